/* lwIP as a benchmark peer: Debian's liblwip (2.1.x) on a TAP, with our own TAP glue.
 *
 *   lwip_tap TAP IPV4 PREFIXLEN
 *
 * Opens (creates) the TAP, brings lwIP up on it with the address, prints one line
 *   ready lwip <version> <options>
 * and serves, like `ustack up --serve echo,discard,chargen,http`:
 *   ICMP echo (lwIP's own), UDP echo (7), TCP echo (7, RFC 862), discard (9, RFC 863),
 *   chargen-like source (19, RFC 864: a fixed pattern until the client closes),
 *   HTTP (80: one fixed page per request, keep-alive; for wrk).
 *
 * Why not Debian's tapif: it sizes its frame buffer from TCP_MSS, and glibc's <netinet/tcp.h>
 * defines TCP_MSS 512, so frames over ~590 bytes overflow it (checked: a program on Debian's
 * tapif_init answers 560-byte pings; a 600-byte one and glibc aborts, "double free or
 * corruption"). Here every read and write is a
 * whole frame of up to 1514 bytes (ETH_FRAME) straight into or out of a pbuf.
 *
 * One thread, raw API: Debian builds lwIP with NO_SYS=0 and core locking, but its core-lock
 * check only applies once tcpip_init() has started lwIP's own thread, which this program never
 * does: lwip_init() and a poll() loop that also runs lwIP's timers (sys_check_timeouts).
 *
 * Tuning: TCP_MSS, TCP_WND, TCP_SND_BUF, the pools are compile-time options of Debian's
 * liblwip.so (its lwipopts.h: MSS 1460, window 65535 with window scaling, send buffer 65535,
 * pools from malloc). What can be changed without rebuilding it is changed here: each accepted
 * connection's send buffer is raised to SND_BUF (the segment-queue limit TCP_SND_QUEUELEN,
 * 4 * TCP_SND_BUF / MSS segments, still bounds it) and Nagle is off for echo and http.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lwip/init.h"
#include "lwip/opt.h"
#include "lwip/etharp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "netif/ethernet.h"

#define ETH_FRAME 1514          /* 14-byte Ethernet header + 1500-byte MTU */
#define RX_BURST 64             /* frames read per wake-up before the timers run */
#define SND_BUF (240 * 1024)    /* per-connection send buffer (see the note above) */
#define SOURCE_CHUNK 16384      /* chargen writes this much per tcp_write */

static int tap_fd = -1;
static struct netif nif;
static unsigned char tx_frame[ETH_FRAME];
static char pattern[SOURCE_CHUNK];
/* the page ustack's http service shows at / (benchmarks/linux_peer.py gives the same) */
static const char http_reply[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 73\r\n\r\n"
    "<html><body><h1>ustack</h1><p>a TCP/IP stack in Python</p></body></html>\n";

static int tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    if (fd < 0) {
        perror("/dev/net/tun");
        exit(1);
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        perror("TUNSETIFF");
        exit(1);
    }
    return fd;
}

/* netif->linkoutput: one write() per frame; a chained pbuf is copied into one frame first */
static err_t tap_linkoutput(struct netif *n, struct pbuf *p)
{
    const void *data = p->payload;
    ssize_t w;
    (void)n;
    if (p->tot_len > ETH_FRAME)
        return ERR_BUF;
    if (p->next != NULL) {
        pbuf_copy_partial(p, tx_frame, p->tot_len, 0);
        data = tx_frame;
    }
    w = write(tap_fd, data, p->tot_len);
    return w == (ssize_t)p->tot_len ? ERR_OK : ERR_IF;
}

static err_t tap_netif_init(struct netif *n)
{
    static const unsigned char mac[6] = {0x02, 0, 0, 0, 0, 0x02};
    n->name[0] = 't';
    n->name[1] = 'p';
    n->output = etharp_output;
    n->linkoutput = tap_linkoutput;
    n->mtu = 1500;
    n->hwaddr_len = 6;
    memcpy(n->hwaddr, mac, 6);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

/* Read up to RX_BURST frames, each straight into its own pbuf. */
static void tap_input(void)
{
    int i;
    for (i = 0; i < RX_BURST; i++) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, ETH_FRAME, PBUF_RAM);
        ssize_t r;
        if (p == NULL)
            return;
        r = read(tap_fd, p->payload, ETH_FRAME);
        if (r <= 0) {
            pbuf_free(p);
            return;
        }
        pbuf_realloc(p, (u16_t)r);
        if (nif.input(p, &nif) != ERR_OK)
            pbuf_free(p);
    }
}

/* ---- UDP echo (7) ---- */
static void udp_echo_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p,
                          const ip_addr_t *addr, u16_t port)
{
    (void)arg;
    udp_sendto(pcb, p, addr, port);
    pbuf_free(p);
}

/* ---- TCP services ---- */
enum { ECHO = 7, DISCARD = 9, SOURCE = 19, HTTP = 80 };

/* one per accepted connection: which service, and where the HTTP request parser stands */
struct conn {
    int kind;
    u32_t http;
};

static void conn_close(struct tcp_pcb *pcb, struct conn *c)
{
    free(c);
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    if (tcp_close(pcb) != ERR_OK)
        tcp_abort(pcb);
}

static void source_fill(struct tcp_pcb *pcb)
{
    while (tcp_sndbuf(pcb) >= SOURCE_CHUNK && tcp_sndqueuelen(pcb) < TCP_SND_QUEUELEN - 16) {
        if (tcp_write(pcb, pattern, SOURCE_CHUNK, TCP_WRITE_FLAG_COPY) != ERR_OK)
            break;
    }
    tcp_output(pcb);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)len;
    if (((struct conn *)arg)->kind == SOURCE)
        source_fill(pcb);
    return ERR_OK;
}

/* HTTP: count the ends of requests (blank lines) across segments, one reply each */
static int http_scan(struct pbuf *p, u32_t *state)
{
    static const char end[4] = {'\r', '\n', '\r', '\n'};
    int replies = 0;
    struct pbuf *q;
    for (q = p; q != NULL; q = q->next) {
        const char *c = q->payload;
        u16_t i;
        for (i = 0; i < q->len; i++) {
            if (c[i] == end[*state]) {
                if (++*state == 4) {
                    replies++;
                    *state = 0;
                }
            } else {
                *state = c[i] == '\r' ? 1 : 0;
            }
        }
    }
    return replies;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct conn *c = arg;
    (void)err;
    if (p == NULL) {                     /* the client's FIN */
        conn_close(pcb, c);
        return ERR_OK;
    }
    if (c->kind == ECHO) {
        struct pbuf *q;
        if (tcp_sndbuf(pcb) < p->tot_len || tcp_sndqueuelen(pcb) > TCP_SND_QUEUELEN - 8)
            return ERR_MEM;              /* lwIP keeps it and offers it again */
        for (q = p; q != NULL; q = q->next)
            tcp_write(pcb, q->payload, q->len, TCP_WRITE_FLAG_COPY);
        tcp_output(pcb);
    } else if (c->kind == HTTP) {
        int n = http_scan(p, &c->http);
        if (tcp_sndbuf(pcb) < (u32_t)n * (sizeof(http_reply) - 1))
            return ERR_MEM;
        while (n-- > 0)
            tcp_write(pcb, http_reply, sizeof(http_reply) - 1, TCP_WRITE_FLAG_COPY);
        tcp_output(pcb);
    }
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    (void)err;                           /* the pcb is already freed */
    free(arg);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    int kind = (int)(long)arg;
    struct conn *c;
    if (err != ERR_OK || pcb == NULL)
        return ERR_VAL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ERR_MEM;
    c->kind = kind;
    pcb->snd_buf = SND_BUF;
    if (kind == ECHO || kind == HTTP)
        tcp_nagle_disable(pcb);
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    if (kind == SOURCE)
        source_fill(pcb);
    return ERR_OK;
}

static void listen_on(u16_t port)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL || tcp_bind(pcb, IP4_ADDR_ANY, port) != ERR_OK) {
        fprintf(stderr, "lwip_tap: cannot bind TCP port %u\n", port);
        exit(1);
    }
    pcb = tcp_listen_with_backlog(pcb, 255);
    tcp_arg(pcb, (void *)(long)port);
    tcp_accept(pcb, on_accept);
}

int main(int argc, char **argv)
{
    ip4_addr_t ip, mask, gw;
    struct udp_pcb *u;
    int prefix, i;
    if (argc != 4) {
        fprintf(stderr, "usage: lwip_tap TAP IPV4 PREFIXLEN\n");
        return 2;
    }
    prefix = atoi(argv[3]);
    for (i = 0; i < SOURCE_CHUNK; i++)
        pattern[i] = (char)(32 + (i % 95));
    tap_fd = tap_open(argv[1]);
    lwip_init();
    if (!ip4addr_aton(argv[2], &ip) || prefix < 1 || prefix > 32) {
        fprintf(stderr, "lwip_tap: bad address %s/%s\n", argv[2], argv[3]);
        return 2;
    }
    ip4_addr_set_u32(&mask, lwip_htonl(0xffffffffUL << (32 - prefix)));
    ip4_addr_set_zero(&gw);
    netif_add(&nif, &ip, &mask, &gw, NULL, tap_netif_init, ethernet_input);
    netif_set_default(&nif);
    netif_set_up(&nif);

    u = udp_new_ip_type(IPADDR_TYPE_V4);
    udp_bind(u, IP4_ADDR_ANY, 7);
    udp_recv(u, udp_echo_recv, NULL);
    listen_on(ECHO);
    listen_on(DISCARD);
    listen_on(SOURCE);
    listen_on(HTTP);

    printf("ready lwip %s TCP_MSS=%d TCP_WND=%d LWIP_WND_SCALE=%d TCP_RCV_SCALE=%d "
           "TCP_SND_BUF=%d(per-connection %d) TCP_SND_QUEUELEN=%d MEMP_MEM_MALLOC=%d "
           "LWIP_CHECKSUM_ON_COPY=%d RX_BURST=%d\n",
           LWIP_VERSION_STRING, TCP_MSS, TCP_WND, LWIP_WND_SCALE, TCP_RCV_SCALE,
           TCP_SND_BUF, SND_BUF, TCP_SND_QUEUELEN, MEMP_MEM_MALLOC, LWIP_CHECKSUM_ON_COPY,
           RX_BURST);
    fflush(stdout);

    for (;;) {
        struct pollfd pfd = {tap_fd, POLLIN, 0};
        u32_t sleep_ms = sys_timeouts_sleeptime();
        if (sleep_ms > 100)
            sleep_ms = 100;
        if (poll(&pfd, 1, (int)sleep_ms) > 0)
            tap_input();
        sys_check_timeouts();
    }
}
