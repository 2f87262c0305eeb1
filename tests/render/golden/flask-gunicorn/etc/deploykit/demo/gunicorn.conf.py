# Gunicorn settings for demo, rendered by deploykit. Do not edit here:
# change deploykit.toml and run `deploykit apply` again.
# Identity (user/group), the working directory and daemonising are systemd's job
# (User=, WorkingDirectory=), so they are absent here.
wsgi_app = 'app:app'
bind = ['unix:/run/demo.sock']
umask = 7
proc_name = 'demo'
workers = 2
worker_class = 'deploykit.server.workers.Worker'
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 0
max_requests_jitter = 0
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
backlog = 2048
worker_tmp_dir = '/dev/shm'
forwarded_allow_ips = '127.0.0.1,::1'
preload_app = False
accesslog = '-'
errorlog = '-'
loglevel = 'info'
control_socket_disable = True
raw_env = ['DEPLOYKIT_SERVE_ARGS=--wsgi-threads 8 --interface wsgi']
