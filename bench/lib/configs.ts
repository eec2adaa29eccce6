/**
 * nginx and HAProxy configuration text for the bench: the static origins and
 * the two native reverse-proxy peers. Every instance gets its own prefix
 * directory, no access log, and keep-alive everywhere, so the peers are
 * configured as equivalently as the products allow. The origin always runs one
 * process; the proxy peers run as many workers/threads as usher (`--workers`,
 * at least one).
 */

/** Response body sizes served by the origins (/64m, the l4 file, is L4_BODY_BYTES in args.ts). */
export const SMALL_BODY = 'ok\n';
export const LARGE_BODY_BYTES = 65536;
/** Body size of /1m (the 1m scenario). */
export const MIB_BODY_BYTES = 1024 * 1024;

/** Certificate and key the TLS-terminating peers share (generated per run into the temp dir). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** cert + key concatenated, the form HAProxy's `crt` takes. */
  readonly pem: string;
}

const KEEPALIVE = `keepalive_timeout 65s;
    keepalive_requests 100000000;`;

/**
 * One worker: a single process (`master_process off`), as the bench always did.
 * More: a master and `workers` worker processes (`worker_processes` is ignored
 * without a master); as root, the workers stay root like the single process
 * (nginx would otherwise switch them to nobody).
 */
function nginxPreamble(dir: string, name: string, workers = 1): string {
  const processes =
    workers <= 1
      ? `master_process off;
worker_processes 1;`
      : `master_process on;
worker_processes ${workers};${process.getuid?.() === 0 ? '\nuser root root;' : ''}`;
  return `daemon off;
${processes}
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
 * `/small` = "ok\n" from memory, `/64k` = a 65536-byte file and `/64m` (only
 * written when the l4 scenario runs) a 64 MiB file (sendfile, cached fd).
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
        location = /64m {
            root ${dir}/www;
        }
        location = /1m {
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
 * With `tls` it terminates TLS instead (HTTP/1.1 only, no h2: wrk sends no
 * ALPN), everything else the same. `name` keeps the pid and log files of
 * instances sharing `dir` apart. `workers`: worker processes (see nginxPreamble).
 */
export function proxyNginxConf(dir: string, port: number, backends: readonly number[], tls?: TlsFiles, name = 'proxy', workers = 1): string {
  const servers = backends.map((p) => `        server 127.0.0.1:${p};`).join('\n');
  const listen = tls
    ? `        listen 127.0.0.1:${port} ssl backlog=4096;
        ssl_certificate ${tls.cert};
        ssl_certificate_key ${tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;`
    : `        listen 127.0.0.1:${port} backlog=4096;`;
  return `${nginxPreamble(dir, name, workers)}
http {
    ${nginxHttpCommon(dir)}
    upstream backends {
${servers}
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 65s;
    }
    server {
${listen}
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

function haproxyServers(backends: readonly number[]): string {
  return backends.map((p, i) => `    server b${i + 1} 127.0.0.1:${p}`).join('\n');
}

/**
 * HAProxy: `threads` threads (default one), mode http, round-robin,
 * `http-reuse always`, no log lines at all. With `tls` the frontend terminates
 * TLS (`bind … ssl crt`, ALPN http/1.1), everything else the same.
 */
export function haproxyConf(port: number, backends: readonly number[], tls?: TlsFiles, threads = 1): string {
  return `global
    nbthread ${threads}
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
    bind 127.0.0.1:${port}${tls ? ` ssl crt ${tls.pem} alpn http/1.1` : ''}
    default_backend be

backend be
    balance roundrobin
${haproxyServers(backends)}
`;
}

/**
 * HAProxy as an L4 proxy: `threads` threads (default one), `mode tcp`,
 * round-robin, no log. Kernel splicing stays off (HAProxy's default; no
 * `option splice-*`), so bytes go through user space as they do in usher.
 */
export function haproxyTcpConf(port: number, backends: readonly number[], threads = 1): string {
  return `global
    nbthread ${threads}
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 65s
    timeout server 65s

frontend fe
    bind 127.0.0.1:${port}
    default_backend be

backend be
    balance roundrobin
${haproxyServers(backends)}
`;
}

function usherPool(backends: readonly number[]): string {
  return `pools:
  origin:
    algorithm: round-robin
    backends:
${backends.map((p) => `      - address: 127.0.0.1:${p}`).join('\n')}
accessLog:
  enabled: false
`;
}

/** usher config for the l4 scenario: one `protocol: tcp` listener, round-robin over the origins. */
export function usherTcpYaml(port: number, backends: readonly number[]): string {
  return `# generated by bench/run.ts (l4 scenario)
listeners:
  - name: l4
    bind: 127.0.0.1:${port}
    protocol: tcp
    routes:
      - pool: origin
${usherPool(backends)}`;
}

/**
 * usher config for the https scenario: one `protocol: https` listener with the
 * bench certificate, HTTP/1.1 only (wrk sends no ALPN), and keep-alive as long
 * as nginx's and HAProxy's (maxRequestsPerConnection at its maximum instead of
 * the default 1000, which would add a TLS handshake every 1000 requests).
 */
export function usherHttpsYaml(port: number, backends: readonly number[], tls: TlsFiles): string {
  return `# generated by bench/run.ts (https scenario)
listeners:
  - name: tls
    bind: 127.0.0.1:${port}
    protocol: https
    tls:
      certificates:
        - cert: ${JSON.stringify(tls.cert)}
          key: ${JSON.stringify(tls.key)}
      alpn: [http/1.1]
    limits:
      maxRequestsPerConnection: 1000000
    timeouts:
      keepAlive: 65s
    routes:
      - pool: origin
${usherPool(backends)}`;
}
