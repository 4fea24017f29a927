/*
 * A closed-loop HTTP/1.1 load generator that times every response by its status.
 *
 * wrk keeps one latency distribution for every answer, so under shedding the p99
 * of the accepted requests can only be bounded from it. This one keeps the latency
 * of each answer with its status class and reports the exact percentiles of the
 * accepted (2xx) answers.
 *
 *   loadgen HOST PORT PATH BODY_FILE CONNECTIONS SECONDS [TIMEOUT_S] [THREADS]
 *
 * THREADS (default 2, as the benchmarks run wrk) event loops share the
 * connections. Each connection sends the same POST (Content-Type: application/json), waits for
 * the whole answer, and sends the next at once (keep-alive), like wrk. Classes:
 * ok (2xx), r429 / r503 (429 or 503 with Retry-After: shedding), other (any other
 * answer). A connection that fails, is closed, or waits longer than TIMEOUT_S
 * (default 10) is counted in "socket_errors" and opened again. The last line of
 * output is one JSON object.
 *
 * Build: cc -O2 -pthread -o loadgen loadgen.c   (Linux: epoll)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OK, R429, R503, OTHER, CLASSES };
static const char *class_names[CLASSES] = {"ok", "r429", "r503", "other"};

typedef struct {
    double *values;
    size_t len, cap;
} series;

struct worker;

typedef struct {
    struct worker *w;
    int fd;
    size_t sent;       /* bytes of the request written */
    char *buf;         /* the answer read so far */
    size_t used, cap;
    double started;    /* when the request's first byte was written */
} conn;

/* One event loop: its connections, and what it measured. */
typedef struct worker {
    int epfd;
    conn *conns;
    int n;
    series latencies[CLASSES];
    long socket_errors;
} worker;

static char *request;
static size_t request_len;
static struct sockaddr_in address;
static double seconds, timeout;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void push(series *s, double value) {
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->values = realloc(s->values, s->cap * sizeof(double));
        if (!s->values) die("realloc");
    }
    s->values[s->len++] = value;
}

static void open_conn(conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS)
        die("connect");
    c->sent = 0;
    c->used = 0;
    c->started = 0;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* Close and open again; `error` counts it as a socket error. */
static void reopen(conn *c, int error) {
    c->w->socket_errors += error;
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(c);
}

static void want(conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void send_more(conn *c) {
    if (c->sent == 0) c->started = now();
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) {
                want(c, EPOLLOUT);
                return;
            }
            reopen(c, 1);
            return;
        }
        c->sent += (size_t)n;
    }
    want(c, EPOLLIN);
}

/* The header's value (case-insensitive name), or NULL; `end` bounds the head. */
static const char *header(const char *head, const char *end, const char *name) {
    size_t len = strlen(name);
    for (const char *p = head; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n') p++;
        if ((size_t)(end - p) > len + 1 && strncasecmp(p, name, len) == 0 && p[len] == ':')
            return p + len + 1;
    }
    return NULL;
}

/* 1 when a whole answer was read and counted, 0 when more is needed, -1 on a bad answer. */
static int take_answer(conn *c) {
    char *head_end = memmem(c->buf, c->used, "\r\n\r\n", 4);
    if (!head_end) return 0;
    size_t head_len = (size_t)(head_end - c->buf) + 4;
    if (c->used < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
    int status = atoi(c->buf + 9);
    const char *length = header(c->buf, head_end, "content-length");
    if (!length) return -1; /* the gateway and MLflow send lengths; chunked is not read here */
    size_t body = (size_t)strtoul(length, NULL, 10);
    if (c->used < head_len + body) return 0;
    int retry = header(c->buf, head_end, "retry-after") != NULL;
    const char *connection = header(c->buf, head_end, "connection");
    int closing = connection && strncasecmp(connection + strspn(connection, " "), "close", 5) == 0;
    int cls = status >= 200 && status < 300 ? OK
              : status == 429 && retry      ? R429
              : status == 503 && retry      ? R503
                                            : OTHER;
    push(&c->w->latencies[cls], now() - c->started);
    size_t rest = c->used - head_len - body;
    memmove(c->buf, c->buf + head_len + body, rest);
    c->used = rest;
    c->sent = 0;
    if (closing)
        reopen(c, 0); /* a close the server announced is not an error */
    else
        send_more(c); /* the next request at once, as wrk does */
    return 1;
}

static void read_more(conn *c) {
    for (;;) {
        if (c->cap - c->used < 65536) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap);
            if (!c->buf) die("realloc");
        }
        ssize_t n = read(c->fd, c->buf + c->used, c->cap - c->used);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            reopen(c, 1);
            return;
        }
        if (n < 0) return;
        c->used += (size_t)n;
        int taken = take_answer(c);
        if (taken < 0) {
            reopen(c, 1);
            return;
        }
        if (taken > 0) return;
    }
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile in ms (nearest rank), or -1 when nothing was measured. */
static double quantile_ms(series *s, double q) {
    if (s->len == 0) return -1;
    size_t rank = (size_t)(q * (double)s->len + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > s->len) rank = s->len;
    return s->values[rank - 1] * 1000.0;
}

static void *run(void *arg) {
    worker *w = arg;
    w->epfd = epoll_create1(0);
    if (w->epfd < 0) die("epoll_create1");
    for (int i = 0; i < w->n; i++) {
        w->conns[i].w = w;
        open_conn(&w->conns[i]);
    }
    struct epoll_event events[1024];
    double start = now(), end = start + seconds, last_check = start;
    while (now() < end) {
        int n = epoll_wait(w->epfd, events, 1024, 10);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                reopen(c, 1);
            } else if (c->sent < request_len && (events[i].events & EPOLLOUT)) {
                send_more(c);
            } else if (events[i].events & EPOLLIN) {
                read_more(c);
            }
        }
        double t = now();
        if (t - last_check > 0.1) {
            last_check = t;
            for (int i = 0; i < w->n; i++)
                if (w->conns[i].sent > 0 && t - w->conns[i].started > timeout)
                    reopen(&w->conns[i], 1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr,
                "usage: %s HOST PORT PATH BODY_FILE CONNECTIONS SECONDS [TIMEOUT_S] [THREADS]\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]), connections = atoi(argv[5]);
    int threads = argc > 8 ? atoi(argv[8]) : 2;
    seconds = atof(argv[6]);
    timeout = argc > 7 ? atof(argv[7]) : 10.0;
    if (port <= 0 || connections <= 0 || seconds <= 0 || timeout <= 0 || threads <= 0) {
        fprintf(stderr,
                "loadgen: PORT, CONNECTIONS, SECONDS, TIMEOUT_S and THREADS must be positive\n");
        return 2;
    }
    if (threads > connections) threads = connections;
    FILE *f = fopen(argv[4], "rb");
    if (!f) die(argv[4]);
    fseek(f, 0, SEEK_END);
    long body_len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *body = malloc((size_t)body_len + 1);
    if (!body || fread(body, 1, (size_t)body_len, f) != (size_t)body_len) die("read body");
    fclose(f);
    request = malloc((size_t)body_len + 512);
    if (!request) die("malloc");
    request_len = (size_t)sprintf(request,
                                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                                  "application/json\r\nContent-Length: %ld\r\n\r\n",
                                  path, host, port, body_len);
    memcpy(request + request_len, body, (size_t)body_len);
    request_len += (size_t)body_len;

    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "loadgen: HOST must be an IPv4 address, got %s\n", host);
        return 2;
    }
    conn *conns = calloc((size_t)connections, sizeof(conn));
    worker *workers = calloc((size_t)threads, sizeof(worker));
    pthread_t *ids = calloc((size_t)threads, sizeof(pthread_t));
    if (!conns || !workers || !ids) die("calloc");
    double start = now();
    for (int t = 0, first = 0; t < threads; t++) {
        int n = connections / threads + (t < connections % threads);
        workers[t].conns = conns + first;
        workers[t].n = n;
        first += n;
        if (pthread_create(&ids[t], NULL, run, &workers[t]) != 0) die("pthread_create");
    }
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    double elapsed = now() - start;

    long answered = 0, socket_errors = 0;
    series latencies[CLASSES] = {{0}}, all = {0};
    for (int t = 0; t < threads; t++) {
        socket_errors += workers[t].socket_errors;
        for (int k = 0; k < CLASSES; k++)
            for (size_t i = 0; i < workers[t].latencies[k].len; i++) {
                push(&latencies[k], workers[t].latencies[k].values[i]);
                push(&all, workers[t].latencies[k].values[i]);
            }
    }
    for (int k = 0; k < CLASSES; k++) {
        answered += (long)latencies[k].len;
        qsort(latencies[k].values, latencies[k].len, sizeof(double), by_value);
    }
    qsort(all.values, all.len, sizeof(double), by_value);
    printf("{\"seconds\": %.6f, \"answered\": %ld", elapsed, answered);
    for (int k = 0; k < CLASSES; k++) printf(", \"%s\": %zu", class_names[k], latencies[k].len);
    printf(", \"socket_errors\": %ld, \"p50_ms\": %.4f, \"p99_ms\": %.4f, "
           "\"p50_accepted_ms\": %.4f, \"p99_accepted_ms\": %.4f, \"p99_shed_ms\": %.4f}\n",
           socket_errors, quantile_ms(&all, 0.50), quantile_ms(&all, 0.99),
           quantile_ms(&latencies[OK], 0.50), quantile_ms(&latencies[OK], 0.99),
           quantile_ms(&latencies[R503], 0.99));
    return 0;
}
