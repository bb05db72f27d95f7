/*
 * fake_upstream.c: a fast fake OpenAI-compatible upstream for bench/run.sh.
 *
 * It stands in for a paid LLM API so that a benchmark measures the gateway and
 * not the model: one thread, epoll, HTTP/1.1 keep-alive, replies precomputed at
 * start-up, so one core serves tens of thousands of requests per second.
 *
 *   POST <any>/chat/completions                  chat.completion JSON with usage
 *   POST <any>/chat/completions  "stream": true  SSE (chunked): role, 4 content
 *                                                pieces, finish, usage chunk, [DONE]
 *   GET  /health                                 {"status":"ok"}
 *   GET  <any>/models                            one-model list
 *   anything else                                404 JSON error
 *
 * Any Authorization header (or none) is accepted. Request bodies may come with
 * Content-Length or chunked transfer encoding. Listens on 127.0.0.1 only.
 *
 * Build: gcc -O2 -Wall -o fake_upstream fake_upstream.c
 * Run:   ./fake_upstream [port]          (default 18001)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define MAX_HEADER 65536
#define MAX_BODY (8 << 20)

typedef struct {
    char *data;
    size_t len;
} reply;

typedef struct {
    int fd;
    char *in; /* bytes received and not yet consumed */
    size_t in_len, in_cap;
    char *out; /* bytes that send() could not take yet */
    size_t out_len, out_sent, out_cap;
    int closing; /* close once out is flushed (Connection: close) */
} conn;

static reply r_json, r_sse, r_health, r_models, r_404;
static int epfd;

static const char *UPSTREAM_MODEL = "fake-gpt-upstream-0001";

static reply make_reply(const char *status, const char *headers, const char *body) {
    size_t blen = strlen(body), cap = blen + 512;
    reply r = {malloc(cap), 0};
    r.len = (size_t)snprintf(r.data, cap,
                             "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%sx-request-id: req_bench\r\n\r\n%s",
                             status, blen, headers, body);
    return r;
}

/* Appends one SSE event as one HTTP chunk. */
static size_t put_event(char *dst, size_t cap, const char *event) {
    size_t n = strlen(event);
    return (size_t)snprintf(dst, cap, "%zx\r\n%s\r\n", n, event);
}

static void build_replies(void) {
    char body[2048], ev[1024], common[256];
    snprintf(body, sizeof body,
             "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
             "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
             "\"content\":\"A gateway adds work to every call, so its tail latency becomes the tail latency "
             "of every product built on top of it.\",\"refusal\":null},\"logprobs\":null,"
             "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":24,"
             "\"total_tokens\":55,\"prompt_tokens_details\":{\"cached_tokens\":0},"
             "\"completion_tokens_details\":{\"reasoning_tokens\":0}},\"system_fingerprint\":\"fp_bench\"}",
             UPSTREAM_MODEL);
    r_json = make_reply("200 OK", "Content-Type: application/json\r\n", body);
    r_health = make_reply("200 OK", "Content-Type: application/json\r\n", "{\"status\":\"ok\"}");
    snprintf(body, sizeof body,
             "{\"object\":\"list\",\"data\":[{\"id\":\"%s\",\"object\":\"model\",\"created\":1700000000,"
             "\"owned_by\":\"bench\"}]}",
             UPSTREAM_MODEL);
    r_models = make_reply("200 OK", "Content-Type: application/json\r\n", body);
    r_404 = make_reply("404 Not Found", "Content-Type: application/json\r\n",
                       "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\"}}");

    snprintf(common, sizeof common,
             "\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
             "\"model\":\"%s\",\"system_fingerprint\":\"fp_bench\"",
             UPSTREAM_MODEL);
    static const char *pieces[] = {"A gateway", " adds work", " to every", " call."};
    size_t cap = 8192, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                          "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                          "x-request-id: req_bench\r\n\r\n");
    snprintf(ev, sizeof ev,
             "data: {%s,\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
             "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
             common);
    n += put_event(s + n, cap - n, ev);
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        snprintf(ev, sizeof ev,
                 "data: {%s,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"logprobs\":null,"
                 "\"finish_reason\":null}],\"usage\":null}\n\n",
                 common, pieces[i]);
        n += put_event(s + n, cap - n, ev);
    }
    snprintf(ev, sizeof ev,
             "data: {%s,\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
             "\"usage\":null}\n\n",
             common);
    n += put_event(s + n, cap - n, ev);
    /* The usage chunk OpenAI sends with stream_options.include_usage; sent always, as clients ignore it. */
    snprintf(ev, sizeof ev,
             "data: {%s,\"choices\":[],\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":8,"
             "\"total_tokens\":39}}\n\n",
             common);
    n += put_event(s + n, cap - n, ev);
    n += put_event(s + n, cap - n, "data: [DONE]\n\n");
    n += (size_t)snprintf(s + n, cap - n, "0\r\n\r\n");
    r_sse.data = s;
    r_sse.len = n;
}

static void conn_free(conn *c) {
    close(c->fd); /* closing the fd removes it from the epoll set */
    free(c->in);
    free(c->out);
    free(c);
}

static void watch(conn *c, int want_out) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends bytes now when the socket takes them and keeps the rest for EPOLLOUT. */
static int queue_send(conn *c, const char *p, size_t n) {
    if (c->out_len == c->out_sent) {
        while (n) {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                return -1;
            }
            p += w;
            n -= (size_t)w;
        }
        if (!n) return 0;
        c->out_len = c->out_sent = 0;
    }
    if (c->out_len + n > c->out_cap) {
        c->out_cap = (c->out_len + n) * 2;
        c->out = realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    watch(c, 1);
    return 0;
}

static int flush_pending(conn *c) {
    while (c->out_sent < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 1 : -1;
        }
        c->out_sent += (size_t)w;
    }
    c->out_len = c->out_sent = 0;
    watch(c, 0);
    return 0;
}

/* Finds a header value in the header block [h, end); returns its length in *vlen or NULL. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - h) > nl && h[nl] == ':' && strncasecmp(h, name, nl) == 0) {
            const char *v = h + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        h = eol + 2;
    }
    return NULL;
}

/* Length of a complete chunked body at b, 0 while incomplete, -1 if malformed. */
static long chunked_body_len(const char *b, size_t n) {
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(b + off, n - off, "\r\n", 2);
        if (!eol) return 0;
        char *endp;
        unsigned long size = strtoul(b + off, &endp, 16);
        if (endp == b + off || size > MAX_BODY) return -1;
        off = (size_t)(eol - b) + 2;
        if (size == 0) { /* optional trailers, then an empty line */
            for (;;) {
                const char *t = memmem(b + off, n - off, "\r\n", 2);
                if (!t) return 0;
                if (t == b + off) return (long)(off + 2);
                off = (size_t)(t - b) + 2;
            }
        }
        if (n - off < size + 2) return 0;
        off += size + 2;
    }
}

/* True when the JSON body says "stream": true (whitespace tolerated). */
static int wants_stream(const char *b, size_t n) {
    const char *end = b + n, *p = b;
    while ((p = memmem(p, (size_t)(end - p), "\"stream\"", 8))) {
        p += 8;
        const char *v = p;
        while (v < end && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) v++;
        if (v >= end || *v != ':') continue;
        v++;
        while (v < end && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) v++;
        if (end - v >= 4 && memcmp(v, "true", 4) == 0) return 1;
    }
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Answers every complete request in the input buffer; -1 means drop the connection. */
static int serve_buffered(conn *c) {
    size_t off = 0;
    while (off < c->in_len && !c->closing) {
        const char *req = c->in + off;
        size_t avail = c->in_len - off;
        const char *hend = memmem(req, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail > MAX_HEADER) return -1;
            break;
        }
        const char *line_end = memmem(req, avail, "\r\n", 2);
        const char *hdrs = line_end + 2, *hdrs_end = hend + 2;
        size_t head_len = (size_t)(hend - req) + 4, vlen;
        long body_len = 0;
        const char *v = find_header(hdrs, hdrs_end, "transfer-encoding", &vlen);
        if (v && memmem(v, vlen, "chunked", 7)) {
            body_len = chunked_body_len(req + head_len, avail - head_len);
            if (body_len < 0) return -1;
            if (body_len == 0) break;
        } else if ((v = find_header(hdrs, hdrs_end, "content-length", &vlen))) {
            body_len = strtol(v, NULL, 10);
            if (body_len < 0 || body_len > MAX_BODY) return -1;
            if (avail - head_len < (size_t)body_len) break;
        }
        if ((v = find_header(hdrs, hdrs_end, "connection", &vlen)) && vlen >= 5 && !strncasecmp(v, "close", 5))
            c->closing = 1;
        if (line_end - req >= 8 && !memcmp(line_end - 8, "HTTP/1.0", 8)) c->closing = 1;

        const char *path = memchr(req, ' ', (size_t)(line_end - req));
        path = path ? path + 1 : line_end;
        const char *path_end = memchr(path, ' ', (size_t)(line_end - path));
        if (!path_end) path_end = line_end;
        const char *query = memchr(path, '?', (size_t)(path_end - path));
        size_t plen = (size_t)((query ? query : path_end) - path);

        const reply *r = &r_404;
        if (!strncmp(req, "POST ", 5) && ends_with(path, plen, "/chat/completions"))
            r = wants_stream(req + head_len, (size_t)body_len) ? &r_sse : &r_json;
        else if (!strncmp(req, "GET ", 4) && plen == 7 && !memcmp(path, "/health", 7))
            r = &r_health;
        else if (!strncmp(req, "GET ", 4) && ends_with(path, plen, "/models"))
            r = &r_models;
        if (queue_send(c, r->data, r->len) < 0) return -1;
        off += head_len + (size_t)body_len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* Reads what is available; returns -1 to drop the connection. */
static int on_readable(conn *c) {
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            if (c->in_cap > MAX_BODY + MAX_HEADER) return -1;
            c->in_cap *= 2;
            c->in = realloc(c->in, c->in_cap);
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0) return -1; /* peer closed: whatever it sent last needs no answer */
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return -1;
    }
    return serve_buffered(c);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 18001, one = 1;
    signal(SIGPIPE, SIG_IGN);
    build_replies();

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
        perror("fake_upstream: bind/listen");
        return 1;
    }
    epfd = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "fake_upstream: 127.0.0.1:%d (json reply %zu B, sse reply %zu B)\n", port, r_json.len,
            r_sse.len);

    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(epfd, events, 512, -1);
        if (n < 0 && errno != EINTR) {
            perror("fake_upstream: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->in_cap = 2 * READ_CHUNK;
                    nc->in = malloc(nc->in_cap);
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = nc};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            uint32_t e = events[i].events;
            int drop = (e & EPOLLERR) != 0;
            if (!drop && (e & EPOLLOUT)) drop = flush_pending(c) < 0;
            if (!drop && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) drop = on_readable(c) < 0;
            if (!drop && c->closing && c->out_len == c->out_sent) drop = 1;
            if (drop) conn_free(c);
        }
    }
}
