server "localhost", roles: %w[app]
