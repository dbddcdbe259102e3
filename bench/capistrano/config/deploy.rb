# Capistrano 3 as a peer in bench/deploy.sh: the same repository, deployed on this host
# through SSHKit's local backend (no ssh), git strategy (mirror, then archive | tar).
set :application, "bench"
set :repo_url, ENV.fetch("CAP_REPO")
set :branch, ENV.fetch("CAP_REV", "main")
set :deploy_to, ENV.fetch("CAP_DEPLOY_TO")
set :keep_releases, 5
set :sshkit_backend, SSHKit::Backend::Local
set :format, :dot
set :log_level, :warn
