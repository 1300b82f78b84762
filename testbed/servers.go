package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNSQuery is one question the fake resolver received.
type DNSQuery struct {
	From  netip.AddrPort
	Name  string // lower case, with the trailing dot
	Type  uint16 // dns.TypeA, ...
	Rcode int    // the answer's rcode
}

// maxDNSLog bounds the query log; older entries are dropped.
const maxDNSLog = 1024

// dnsServer is the school's filtering resolver in the internet namespace.
type dnsServer struct {
	log *slog.Logger

	mu      sync.Mutex
	records map[string]netip.Addr
	queries []DNSQuery

	servers []*dns.Server
	wg      sync.WaitGroup
}

func startDNS(s *School, records map[string]netip.Addr, log *slog.Logger) (*dnsServer, error) {
	d := &dnsServer{log: log, records: map[string]netip.Addr{}}
	for k, v := range records {
		d.records[k] = v
	}
	addr := net.JoinHostPort(ResolverIP, "53")
	var pc net.PacketConn
	var ln net.Listener
	err := s.Do("internet", func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", addr); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: dns: listen %s: %w", addr, err)
	}
	d.servers = []*dns.Server{
		{PacketConn: pc, Handler: d},
		{Listener: ln, Handler: d, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for i, srv := range d.servers {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				log.Warn("testbed: dns server stopped", "err", err)
				failed <- err
			}
		}()
		// Shutdown of a server that has not started fails, so wait for it.
		var err error
		select {
		case <-started:
		case err = <-failed:
		case <-time.After(5 * time.Second):
			err = errors.New("did not start")
		}
		if err != nil {
			pc.Close()
			ln.Close()
			d.servers = d.servers[:i]
			d.close()
			return nil, fmt.Errorf("testbed: dns: serve %s: %w", addr, err)
		}
	}
	return d, nil
}

func (d *dnsServer) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, srv := range d.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("testbed: dns: shutdown: %w", err))
		}
	}
	d.wg.Wait()
	return errors.Join(errs...)
}

// ServeDNS answers A questions from the record map: known names get their
// address, known names with another type get an empty answer, unknown
// names NXDOMAIN.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	var q DNSQuery
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		q.From = ap
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
	} else {
		qs := r.Question[0]
		q.Name, q.Type = strings.ToLower(qs.Name), qs.Qtype
		d.mu.Lock()
		addr, ok := d.records[q.Name]
		d.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case qs.Qtype == dns.TypeA || qs.Qtype == dns.TypeANY:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: qs.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   addr.AsSlice(),
			})
		}
	}
	q.Rcode = m.Rcode
	d.mu.Lock()
	if len(d.queries) >= maxDNSLog {
		d.queries = append(d.queries[:0], d.queries[len(d.queries)-maxDNSLog+1:]...)
	}
	d.queries = append(d.queries, q)
	d.mu.Unlock()
	if err := w.WriteMsg(m); err != nil {
		d.log.Debug("testbed: dns: write answer", "err", err)
	}
}

// DNSQueries returns the questions the resolver at 203.0.113.53 received,
// oldest first (the latest 1024).
func (s *School) DNSQueries() []DNSQuery {
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	return append([]DNSQuery(nil), s.dns.queries...)
}

// SetDNSRecord adds or replaces an A record; an invalid addr removes the
// name (which then gets NXDOMAIN).
func (s *School) SetDNSRecord(name string, addr netip.Addr) {
	s.dns.mu.Lock()
	defer s.dns.mu.Unlock()
	if !addr.IsValid() {
		delete(s.dns.records, fqdn(name))
		return
	}
	s.dns.records[fqdn(name)] = addr
}

// ResolverAddr is the fake filtering resolver, 203.0.113.53:53.
func (s *School) ResolverAddr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(ResolverIP), 53)
}

// WebAddr is the fake web server's address, 203.0.113.80.
func (s *School) WebAddr() netip.Addr { return netip.MustParseAddr(WebIP) }

// webServer serves HTTP and HTTPS on 203.0.113.80 in the internet namespace.
type webServer struct {
	servers []*http.Server
	pool    *x509.CertPool
	wg      sync.WaitGroup
}

// WebBanner starts the page the web server returns for ordinary paths, so
// a test can tell that it reached the real server (and not, say, a portal).
const WebBanner = "gatehouse testbed web server"

func startWeb(s *School, records map[string]netip.Addr, log *slog.Logger) (*webServer, error) {
	var names []string
	for n, a := range records {
		if a == s.WebAddr() {
			names = append(names, strings.TrimSuffix(n, "."))
		}
	}
	sort.Strings(names)
	cert, pool, err := selfSigned(names, s.WebAddr())
	if err != nil {
		return nil, err
	}
	w := &webServer{pool: pool}
	var plain, secure net.Listener
	err = s.Do("internet", func() error {
		var err error
		if plain, err = net.Listen("tcp4", net.JoinHostPort(WebIP, "80")); err != nil {
			return err
		}
		if secure, err = net.Listen("tcp4", net.JoinHostPort(WebIP, "443")); err != nil {
			plain.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: web: listen: %w", err)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	for _, l := range []net.Listener{plain, tls.NewListener(secure, &tls.Config{Certificates: []tls.Certificate{cert}})} {
		srv := &http.Server{Handler: http.HandlerFunc(webHandler), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
		w.servers = append(w.servers, srv)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("testbed: web server stopped", "err", err)
			}
		}()
	}
	return w, nil
}

func (w *webServer) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, srv := range w.servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			errs = append(errs, fmt.Errorf("testbed: web: shutdown: %w", err))
		}
	}
	w.wg.Wait()
	return errors.Join(errs...)
}

// webHandler answers the operating systems' connectivity checks as the
// real hosts do (so a device "behind" the portal looks online once let
// through) and anything else with a page naming the server.
func webHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Gatehouse-Testbed", "web")
	switch r.URL.Path {
	case "/generate_204", "/gen_204":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/hotspot-detect.html", "/library/test/success.html":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")
		return
	case "/connecttest.txt":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "Microsoft Connect Test")
		return
	case "/ncsi.txt":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "Microsoft NCSI")
		return
	case "/success.txt", "/canonical.html":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "success\n")
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s\nserver: %s\nscheme: %s\nhost: %s\npath: %s\nclient: %s\n",
		WebBanner, WebIP, scheme, r.Host, r.URL.Path, r.RemoteAddr)
}

// selfSigned makes a certificate for the web server's names and address,
// and a pool that trusts it.
func selfSigned(names []string, ip netip.Addr) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("testbed: web: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("testbed: web: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: WebBanner},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           []net.IP{ip.AsSlice()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("testbed: web: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("testbed: web: parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// WebCertPool trusts the web server's self-signed certificate.
func (s *School) WebCertPool() *x509.CertPool { return s.web.pool }
