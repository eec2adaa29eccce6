/**
 * nginx and HAProxy configuration text for the bench: the static origins and
 * the two native reverse-proxy peers. Every instance gets its own prefix
 * directory, one worker, no access log, and keep-alive everywhere, so the peers
 * are configured as equivalently as the products allow.
 */

/** Response body sizes served by the origins. */
export const SMALL_BODY = 'ok\n';
export const LARGE_BODY_BYTES = 65536;

const KEEPALIVE = `keepalive_timeout 65s;
    keepalive_requests 100000000;`;

function nginxPreamble(dir: string, name: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events {
    worker_connections 16384;
}
`;
}

function nginxHttpCommon(dir: string): string {
  return `access_log off;
    ${KEEPALIVE}
    tcp_nodelay on;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;`;
}

/**
 * The static origin: one nginx process listening on every backend port,
 * `/small` = "ok\n" from memory, `/64k` = a 65536-byte file (sendfile, cached fd).
 */
export function originNginxConf(dir: string, ports: readonly number[]): string {
  const listens = ports.map((p) => `        listen 127.0.0.1:${p} backlog=4096;`).join('\n');
  return `${nginxPreamble(dir, 'origin')}
http {
    ${nginxHttpCommon(dir)}
    sendfile on;
    open_file_cache max=16 inactive=600s;
    default_type application/octet-stream;
    server {
${listens}
        location = /small {
            default_type text/plain;
            return 200 "${SMALL_BODY.replace('\n', '\\n')}";
        }
        location = /64k {
            root ${dir}/www;
        }
        location / {
            return 404;
        }
    }
}
`;
}

/**
 * nginx as a reverse proxy: round-robin upstream with a keep-alive cache of 64
 * idle connections, HTTP/1.1 upstream with the Connection header cleared.
 * Buffers hold 128 KiB in memory and temp files are off, so a 64 KiB response
 * never touches disk (the Node proxies stream with backpressure instead).
 */
export function proxyNginxConf(dir: string, port: number, backends: readonly number[]): string {
  const servers = backends.map((p) => `        server 127.0.0.1:${p};`).join('\n');
  return `${nginxPreamble(dir, 'proxy')}
http {
    ${nginxHttpCommon(dir)}
    upstream backends {
${servers}
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 65s;
    }
    server {
        listen 127.0.0.1:${port} backlog=4096;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffers 16 8k;
            proxy_max_temp_file_size 0;
        }
    }
}
`;
}

/** HAProxy: one thread, mode http, round-robin, `http-reuse always`, no log lines at all. */
export function haproxyConf(port: number, backends: readonly number[]): string {
  const servers = backends.map((p, i) => `    server b${i + 1} 127.0.0.1:${p}`).join('\n');
  return `global
    nbthread 1
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 65s
    timeout server 65s
    timeout http-keep-alive 65s

frontend fe
    bind 127.0.0.1:${port}
    default_backend be

backend be
    balance roundrobin
${servers}
`;
}
