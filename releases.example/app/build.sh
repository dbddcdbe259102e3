#!/bin/sh
# The demo's build: check the code compiles and record what was built.
# Runs in releases/<sha> with RELEASE_SHA, RELEASE_DIR, DEPLOY_ROOT, BRANCH set.
set -eu
python3 -m py_compile app.py
echo "built ${RELEASE_SHA} version $(cat VERSION) on branch ${BRANCH}" > BUILD_INFO
echo "demo build ok: $(cat BUILD_INFO)"
