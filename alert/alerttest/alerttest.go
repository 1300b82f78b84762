// Package alerttest runs the real receivers the alert tests deliver to, in
// a testbed namespace: Debian's python3-aiosmtpd as an SMTP server (with
// STARTTLS, delivering to a Maildir) and rsyslogd listening for RFC 5424
// over TCP. It exists so the alert package's tests and the daemon's
// end-to-end test share one way of starting them; it is not used by the
// product.
package alerttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-net/gatehouse/testbed"
)

// Python is Debian's interpreter, which has python3-aiosmtpd (a pyenv or
// venv python3 earlier in PATH does not).
const Python = "/usr/bin/python3"

// SMTPServer is aiosmtpd in a namespace, delivering every message to a
// Maildir.
type SMTPServer struct {
	t       testing.TB
	school  *testbed.School
	ns      string
	Addr    string // ip:port
	Maildir string
	CA      *x509.CertPool // trusts the server's STARTTLS certificate
	// CAFile is that certificate as PEM (self-signed, so its own CA), for
	// a daemon's alerts.smtp.ca_file.
	CAFile string
	dir    string
	tls    bool
	auth   [2]string // user and password AUTH requires; "" for none

	mu  sync.Mutex
	cmd *testbed.Cmd
	out *strings.Builder
}

// StartSMTP starts the server in namespace ns on addr (ip:port) with
// STARTTLS required, and stops it when the test ends.
func StartSMTP(t testing.TB, s *testbed.School, ns, addr string) *SMTPServer {
	t.Helper()
	return startSMTP(t, s, ns, addr, true)
}

// StartPlainSMTP is StartSMTP without STARTTLS, for a daemon that cannot
// be told to trust the test's certificate.
func StartPlainSMTP(t testing.TB, s *testbed.School, ns, addr string) *SMTPServer {
	t.Helper()
	return startSMTP(t, s, ns, addr, false)
}

// StartAuthSMTP is StartSMTP that also requires AUTH (PLAIN or LOGIN, only
// after STARTTLS) as user with password pw.
func StartAuthSMTP(t testing.TB, s *testbed.School, ns, addr, user, pw string) *SMTPServer {
	t.Helper()
	return startSMTP(t, s, ns, addr, true, user, pw)
}

// authServer is aiosmtpd with an authenticator, which its command line
// cannot set up.
const authServer = `import asyncio, signal, ssl, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
host, port, maildir, cert, key, user, pw = sys.argv[1:8]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == pw
    return AuthResult(success=ok)
handler = Mailbox(maildir)
loop = asyncio.new_event_loop()
loop.run_until_complete(loop.create_server(lambda: SMTP(handler, tls_context=ctx, require_starttls=True,
    authenticator=check, auth_required=True, auth_require_tls=True), host, int(port)))
loop.add_signal_handler(signal.SIGTERM, loop.stop)
loop.run_forever()
`

func startSMTP(t testing.TB, s *testbed.School, ns, addr string, withTLS bool, auth ...string) *SMTPServer {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Fatalf("%s: %v (apt-get install python3-aiosmtpd)", Python, err)
	}
	if err := exec.Command(Python, "-c", "import aiosmtpd").Run(); err != nil {
		t.Fatalf("python3-aiosmtpd is not installed: %v (apt-get install python3-aiosmtpd)", err)
	}
	dir := t.TempDir()
	host, _, _ := strings.Cut(addr, ":")
	ca := writeCert(t, dir, netip.MustParseAddr(host))
	m := &SMTPServer{t: t, school: s, ns: ns, Addr: addr, Maildir: filepath.Join(dir, "Maildir"), CA: ca, CAFile: filepath.Join(dir, "cert.pem"), dir: dir, tls: withTLS}
	if len(auth) == 2 {
		m.auth = [2]string{auth[0], auth[1]}
		if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(authServer), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start (re)starts the server and waits until it accepts connections.
func (m *SMTPServer) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	host, port, _ := strings.Cut(m.Addr, ":")
	args := []string{"-m", "aiosmtpd", "-n", "-l", host + ":" + port}
	if m.tls {
		args = append(args, "--tlscert", filepath.Join(m.dir, "cert.pem"), "--tlskey", filepath.Join(m.dir, "key.pem"))
	}
	args = append(args, "-c", "aiosmtpd.handlers.Mailbox", m.Maildir)
	if m.auth[0] != "" {
		args = []string{filepath.Join(m.dir, "server.py"), host, port, m.Maildir, filepath.Join(m.dir, "cert.pem"), filepath.Join(m.dir, "key.pem"), m.auth[0], m.auth[1]}
	}
	cmd := m.school.Command(context.Background(), m.ns, Python, args...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: out}, &lockedWriter{b: out}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start aiosmtpd: %v", err)
	}
	m.cmd, m.out = cmd, out
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := m.school.DialContext(ctx, m.ns, "tcp", m.Addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("aiosmtpd did not listen on %s within 15s: %v\n%s", m.Addr, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server (the mail already delivered stays in the Maildir).
func (m *SMTPServer) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-done
	}
	m.cmd = nil
}

// Message is one delivered email.
type Message struct {
	File    string
	Arrived time.Time // the Maildir file's modification time
	Header  mail.Header
	Body    string
}

// Messages returns the delivered messages, oldest first.
func (m *SMTPServer) Messages() []Message {
	m.t.Helper()
	var out []Message
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(m.Maildir, sub, "*"))
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				continue
			}
			fh, err := os.Open(f)
			if err != nil {
				continue
			}
			msg, err := mail.ReadMessage(fh)
			if err != nil {
				fh.Close()
				m.t.Errorf("maildir file %s: %v", f, err)
				continue
			}
			body := new(strings.Builder)
			r := decodeBody(msg)
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Read(buf)
				body.Write(buf[:n])
				if err != nil {
					break
				}
			}
			fh.Close()
			out = append(out, Message{File: f, Arrived: fi.ModTime(), Header: msg.Header, Body: body.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Arrived.Before(out[j].Arrived) })
	return out
}

// WaitFor waits up to d for a message whose subject and body contain every
// string of want, and returns it.
func (m *SMTPServer) WaitFor(d time.Duration, want ...string) (Message, bool) {
	deadline := time.Now().Add(d)
	for {
		for _, msg := range m.Messages() {
			text := Subject(msg) + "\n" + msg.Body
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(text, w)
			}
			if ok {
				return msg, true
			}
		}
		if time.Now().After(deadline) {
			return Message{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns the server's output so far.
func (m *SMTPServer) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		return ""
	}
	return m.out.String()
}

// Subject decodes a message's subject.
func Subject(msg Message) string {
	s := msg.Header.Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// TLSConfig is a client configuration that trusts the server.
func (m *SMTPServer) TLSConfig() *tls.Config {
	host, _, _ := strings.Cut(m.Addr, ":")
	return &tls.Config{RootCAs: m.CA, ServerName: host, MinVersion: tls.VersionTLS12}
}

// writeCert writes a self-signed certificate for ip to dir/cert.pem and
// dir/key.pem and returns a pool that trusts it.
func writeCert(t testing.TB, dir string, ip netip.Addr) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: ip.String()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{ip.AsSlice()}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Rsyslog is rsyslogd in a namespace, receiving RFC 5424 over TCP and
// writing each message's app name, structured data and text to a file.
type Rsyslog struct {
	Addr string
	File string
	// CA trusts the listener's certificate (StartRsyslogTLS); nil for
	// plain TCP.
	CA  *x509.CertPool
	out *lockedWriter
}

// TLSConfig is a client configuration that trusts the TLS listener.
func (r *Rsyslog) TLSConfig() *tls.Config {
	host, _, _ := strings.Cut(r.Addr, ":")
	return &tls.Config{RootCAs: r.CA, ServerName: host, MinVersion: tls.VersionTLS12}
}

// Log returns rsyslogd's own output so far.
func (r *Rsyslog) Log() string {
	r.out.mu.Lock()
	defer r.out.mu.Unlock()
	return r.out.b.String()
}

// StartRsyslog starts rsyslogd in ns on addr and stops it when the test
// ends.
func StartRsyslog(t testing.TB, s *testbed.School, ns, addr string) *Rsyslog {
	t.Helper()
	return startRsyslog(t, s, ns, addr, false)
}

// StartRsyslogTLS starts rsyslogd in ns listening for RFC 5424 over TLS
// (RFC 5425) on addr, through its GnuTLS stream driver (Debian's
// rsyslog-gnutls), with a certificate made for the test; r.TLSConfig
// trusts it.
func StartRsyslogTLS(t testing.TB, s *testbed.School, ns, addr string) *Rsyslog {
	t.Helper()
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			t.Fatalf("rsyslog's GnuTLS driver is not installed (build/deps installs rsyslog-gnutls): %v", err)
		}
	}
	return startRsyslog(t, s, ns, addr, true)
}

func startRsyslog(t testing.TB, s *testbed.School, ns, addr string, withTLS bool) *Rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("rsyslogd not found (apt-get install rsyslog): %v", err)
		}
	}
	dir := t.TempDir()
	host, port, _ := strings.Cut(addr, ":")
	r := &Rsyslog{Addr: addr, File: filepath.Join(dir, "alerts.log")}
	global := fmt.Sprintf(`global(workDirectory=%q net.enableDNS="off")
module(load="imtcp")
`, dir)
	if withTLS {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			t.Fatalf("rsyslog TLS address %q: %v", addr, err)
		}
		r.CA = writeCert(t, dir, ip)
		global = fmt.Sprintf(`global(workDirectory=%q net.enableDNS="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%q
  defaultNetstreamDriverCertFile=%q
  defaultNetstreamDriverKeyFile=%q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
`, dir, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	}
	conf := global + fmt.Sprintf(`input(type="imtcp" address=%q port=%q)
template(name="alert" type="string" string="%%app-name%%|%%msgid%%|%%structured-data%%|%%msg%%\n")
*.* action(type="omfile" file=%q template="alert")
`, host, port, r.File)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedWriter{b: &strings.Builder{}}
	r.out = out
	cmd := s.Command(context.Background(), ns, bin, "-n", "-f", cf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := s.DialContext(ctx, ns, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not listen on %s within 15s: %v\n%s", addr, err, r.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitFor waits up to d for a line containing every string of want.
func (r *Rsyslog) WaitFor(d time.Duration, want ...string) (string, bool) {
	deadline := time.Now().Add(d)
	for {
		b, _ := os.ReadFile(r.File)
		for _, line := range strings.Split(string(b), "\n") {
			ok := line != ""
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return line, true
			}
		}
		if time.Now().After(deadline) {
			return string(b), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// decodeBody undoes the message's Content-Transfer-Encoding.
func decodeBody(msg *mail.Message) io.Reader {
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		return quotedprintable.NewReader(msg.Body)
	}
	return msg.Body
}
