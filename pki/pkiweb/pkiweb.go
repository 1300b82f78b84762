// Package pkiweb is the school CA on the admin site: the public Wi-Fi
// onboarding page (the CA certificate to download with its fingerprint,
// the Apple profile, the Windows WLAN profiles and the settings to type on
// Android and ChromeOS, for the school's WPA-Enterprise SSIDs), and the
// network role's client certificate page (issue one for a person or a
// device as a PKCS#12 download whose password is shown once, list them,
// revoke them).
//
// Onboarding is public on the admin host: pupils and staff fetch it on
// their own devices before they can sign in to anything, and it holds
// nothing secret (a CA certificate, SSIDs, a server name). Everything that
// issues or revokes is the network role's, with CSRF on every form.
//
// It owns the pages, their input checks and the one-time hand-over of a
// new PKCS#12 (kept in memory, for its issuer only, until downloaded or 10
// minutes pass). What a certificate is and how it is revoked is package
// pki's; sessions, roles and CSRF are package web's.
package pkiweb

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/pki"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Paths of the pages.
const (
	OnboardPath      = "/wifi"
	CADERPath        = "/wifi/school-ca.crt"
	CAPEMPath        = "/wifi/school-ca.pem"
	MobileConfigPath = "/wifi/school.mobileconfig"
	WindowsPath      = "/wifi/windows.xml"
	CertsPath        = "/wifi/certificates"
	IssuePath        = "/wifi/certificates/issue"
	DownloadPath     = "/wifi/certificates/download"
	RevokePath       = "/wifi/certificates/revoke"
)

// Bounds.
const (
	listLimit   = 200
	maxPending  = 32               // PKCS#12 files waiting for their download
	pendingTTL  = 10 * time.Minute // how long one waits
	maxReason   = 200
	maxKeyInput = 128
)

// People finds the person a certificate is for (package store).
type People interface {
	PersonByKey(ctx context.Context, key string) (store.Person, error)
}

// Options are what the pages need.
type Options struct {
	Authority *pki.Authority
	People    People
	Site      string   // the school's name, in the Apple profile
	SSIDs     []string // the WPA-Enterprise networks onboarding covers
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
}

//go:embed templates/*.html
var templates embed.FS

type pages struct {
	srv     *web.Server
	o       Options
	log     *slog.Logger
	onboard *template.Template
	certs   *template.Template

	mu   sync.Mutex
	pend map[string]pending
}

// pending is an issued PKCS#12 waiting for its one download.
type pending struct {
	actor  string
	issued pki.Issued
	until  time.Time
}

// Register adds the pages: onboarding public, certificates for the
// network role.
func Register(srv *web.Server, o Options) error {
	if srv == nil || o.Authority == nil || o.People == nil {
		return errors.New("pkiweb: register: web server, authority and people are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &pages{srv: srv, o: o, log: o.Logger, pend: map[string]pending{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Local().Format("2006-01-02")
		},
	}
	var err error
	if p.onboard, err = template.New("onboard.html").Funcs(funcs).ParseFS(templates, "templates/onboard.html"); err != nil {
		return fmt.Errorf("pkiweb: parse template: %w", err)
	}
	if p.certs, err = template.New("certs.html").Funcs(funcs).ParseFS(templates, "templates/certs.html"); err != nil {
		return fmt.Errorf("pkiweb: parse template: %w", err)
	}
	srv.AddPublicPage(OnboardPath, p.onboardPage)
	srv.AddPublicPage(CADERPath, p.caDER)
	srv.AddPublicPage(CAPEMPath, p.caPEM)
	srv.AddPublicPage(MobileConfigPath, p.mobileConfig)
	srv.AddPublicPage(WindowsPath, p.windows)
	network := []string{web.RoleNetwork}
	srv.AddPage(web.Page{Path: CertsPath, Title: "Wi-Fi certificates", Roles: network, GET: p.certsPage})
	srv.AddPage(web.Page{Path: IssuePath, Roles: network, POST: p.issue})
	srv.AddPage(web.Page{Path: DownloadPath, Roles: network, POST: p.download})
	srv.AddPage(web.Page{Path: RevokePath, Roles: network, POST: p.revoke})
	return nil
}

func (p *pages) onboarding() pki.Onboarding { return p.o.Authority.Onboarding(p.o.Site, p.o.SSIDs) }

type onboardData struct {
	O        pki.Onboarding
	Android  []pki.Setting
	Server   string
	CAName   string
	CAExpiry time.Time
}

func (p *pages) onboardPage(c *httpx.Context) {
	v := p.srv.View(c, "Join the school Wi-Fi")
	o := p.onboarding()
	v.Data = onboardData{O: o, Android: o.AndroidSettings(), Server: o.ServerName, CAName: o.CA.Subject.CommonName, CAExpiry: o.CA.NotAfter}
	p.srv.Render(c, http.StatusOK, p.onboard, v)
}

func attachment(c *httpx.Context, name, ctype string, data []byte) {
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Data(http.StatusOK, ctype, data)
}

func (p *pages) caDER(c *httpx.Context) {
	attachment(c, "school-ca.crt", "application/x-x509-ca-cert", p.onboarding().CA.Raw)
}

func (p *pages) caPEM(c *httpx.Context) {
	attachment(c, "school-ca.pem", "application/x-pem-file", p.onboarding().CAPEM())
}

func (p *pages) mobileConfig(c *httpx.Context) {
	doc, err := p.onboarding().MobileConfig()
	if err != nil {
		p.log.Warn("pkiweb: mobileconfig", "err", err)
		p.srv.RenderError(c, http.StatusNotFound, "No Wi-Fi network is set up for staff or pupil sign-in yet.")
		return
	}
	attachment(c, "school-wifi.mobileconfig", "application/x-apple-aspen-config", doc)
}

func (p *pages) windows(c *httpx.Context) {
	ssid := c.Query("ssid")
	if !slices.Contains(p.o.SSIDs, ssid) {
		p.srv.RenderError(c, http.StatusNotFound, "There is no such school Wi-Fi network.")
		return
	}
	doc, err := p.onboarding().WindowsProfile(ssid)
	if err != nil {
		p.log.Warn("pkiweb: windows profile", "err", err)
		p.srv.RenderError(c, http.StatusNotFound, "There is no such school Wi-Fi network.")
		return
	}
	attachment(c, "wifi-"+fileSafe(ssid)+".xml", "application/xml", doc)
}

// fileSafe keeps letters, digits, dot, dash and underscore.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_') {
			return r
		}
		return '_'
	}, s)
}

type certsData struct {
	Certs    []store.ClientCert
	CAName   string
	CASHA256 string
	Server   string
	Expires  time.Time
	Own      bool
	// Issued, when set, is a certificate just made: its password and the
	// token of its one download.
	Issued *pki.Issued
	Token  string
	Who    string // the issue form's value, kept after an error
	Device string
	TTL    string
}

var notices = map[string]string{
	"revoked": "The certificate was revoked: it no longer logs in.",
}

func (p *pages) certsPage(c *httpx.Context) {
	v := p.srv.View(c, "Wi-Fi certificates")
	v.Notice = notices[c.Query("done")]
	p.renderCerts(c, http.StatusOK, v, certsData{})
}

func (p *pages) renderCerts(c *httpx.Context, status int, v *web.View, d certsData) {
	list, err := p.o.Authority.ClientCerts(c.Request.Context(), store.ClientCertFilter{Limit: listLimit})
	if err != nil {
		p.log.Error("pkiweb: list certificates", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be read. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	a := p.o.Authority
	d.Certs, d.CAName, d.CASHA256 = list, a.CA().Subject.CommonName, pki.Fingerprint(a.CA())
	d.Server, d.Expires, d.Own = a.ServerName(), a.ServerLeaf().NotAfter, !a.SchoolOwnServerCert()
	d.TTL = pendingTTL.String()
	v.Data = d
	p.srv.Render(c, status, p.certs, v)
}

// cleanText accepts printable text up to n characters.
func cleanText(s string, n int) (string, bool) {
	s = strings.TrimSpace(s)
	return s, utf8.RuneCountInString(s) <= n && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// issue makes a certificate for a person (by username, UPN, staff code or
// admission number) or a device (by DNS name), and shows its password with
// a one-time download button.
func (p *pages) issue(c *httpx.Context) {
	ctx := c.Request.Context()
	who, ok1 := cleanText(c.PostForm("person"), maxKeyInput)
	device, ok2 := cleanText(c.PostForm("device"), maxKeyInput)
	fail := func(status int, msg string) {
		v := p.srv.View(c, "Wi-Fi certificates")
		v.Error = msg
		p.renderCerts(c, status, v, certsData{Who: who, Device: device})
	}
	if !ok1 || !ok2 || (who == "") == (device == "") {
		fail(http.StatusBadRequest, "Give either a person (username, UPN, staff code or admission number) or a device name, not both.")
		return
	}
	actor := web.Actor(c)
	var iss pki.Issued
	var err error
	if who != "" {
		var person store.Person
		person, err = p.o.People.PersonByKey(ctx, who)
		if errors.Is(err, store.ErrNotFound) {
			fail(http.StatusNotFound, "Nobody with that username, UPN, staff code or admission number is known.")
			return
		}
		if err == nil {
			iss, err = p.o.Authority.IssuePerson(ctx, actor, person.ID)
		}
		if errors.Is(err, pki.ErrNoPerson) {
			fail(http.StatusConflict, "That person cannot have a certificate: they have no network access now, or no username.")
			return
		}
	} else {
		iss, err = p.o.Authority.IssueDevice(ctx, actor, device)
		if errors.Is(err, pki.ErrBadName) {
			fail(http.StatusBadRequest, "A device name is a DNS name: letters, digits and hyphens in dotted labels (library-printer or laptop-7.school.example).")
			return
		}
	}
	if err != nil {
		p.log.Error("pkiweb: issue certificate", "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The certificate could not be made. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	token, err := p.hold(actor, iss)
	if err != nil {
		// Issued and recorded but not deliverable: say so, so the
		// network manager can revoke it.
		v := p.srv.View(c, "Wi-Fi certificates")
		v.Error = "Certificate " + iss.Cert.Serial + " was made but cannot be handed over now: " + err.Error() + " Revoke it and issue again later."
		p.renderCerts(c, http.StatusServiceUnavailable, v, certsData{})
		return
	}
	v := p.srv.View(c, "Wi-Fi certificates")
	p.renderCerts(c, http.StatusOK, v, certsData{Issued: &iss, Token: token})
}

// hold keeps an issued PKCS#12 for its one download by actor.
func (p *pages) hold(actor string, iss pki.Issued) (string, error) {
	now := p.o.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, e := range p.pend {
		if now.After(e.until) {
			delete(p.pend, t)
		}
	}
	if len(p.pend) >= maxPending {
		return "", fmt.Errorf("%d certificates are already waiting to be downloaded.", maxPending)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	t := hex.EncodeToString(b)
	p.pend[t] = pending{actor: actor, issued: iss, until: now.Add(pendingTTL)}
	return t, nil
}

// download hands over a held PKCS#12 once, to the user who issued it.
func (p *pages) download(c *httpx.Context) {
	t := c.PostForm("token")
	actor := web.Actor(c)
	p.mu.Lock()
	e, ok := p.pend[t]
	if ok && e.actor == actor {
		delete(p.pend, t)
	}
	p.mu.Unlock()
	if !ok || e.actor != actor || p.o.Now().After(e.until) {
		p.srv.RenderError(c, http.StatusGone, "That download is gone: each certificate file can be downloaded once, by whoever issued it, within "+pendingTTL.String()+". Revoke the certificate and issue a new one.")
		return
	}
	p.log.Info("pkiweb: certificate downloaded", "serial", e.issued.Cert.Serial, "by", actor)
	if c.PostForm("format") == "apple" {
		doc, err := p.onboarding().MobileConfigTLS(e.issued)
		if err != nil {
			p.log.Warn("pkiweb: EAP-TLS mobileconfig", "err", err)
			p.srv.RenderError(c, http.StatusConflict, "No Wi-Fi network is set up for staff or pupil sign-in, so there is no Apple profile to make. Revoke the certificate and issue a new one to download it as a file.")
			return
		}
		attachment(c, strings.TrimSuffix(fileSafe(e.issued.FileName), ".p12")+".mobileconfig", "application/x-apple-aspen-config", doc)
		return
	}
	attachment(c, fileSafe(e.issued.FileName), "application/x-pkcs12", e.issued.PKCS12)
}

func (p *pages) revoke(c *httpx.Context) {
	serial := strings.ToLower(strings.TrimSpace(c.PostForm("serial")))
	reason, ok := cleanText(c.PostForm("reason"), maxReason)
	fail := func(status int, msg string) {
		v := p.srv.View(c, "Wi-Fi certificates")
		v.Error = msg
		p.renderCerts(c, status, v, certsData{})
	}
	if serial == "" || len(serial) > 40 || strings.Trim(serial, "0123456789abcdef") != "" {
		fail(http.StatusBadRequest, "No such certificate.")
		return
	}
	if !ok || reason == "" {
		fail(http.StatusBadRequest, fmt.Sprintf("Give a reason (at most %d characters): it goes into the audit log.", maxReason))
		return
	}
	_, err := p.o.Authority.Revoke(c.Request.Context(), web.Actor(c), serial, reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(http.StatusNotFound, "No such certificate.")
		return
	case errors.Is(err, store.ErrConflict):
		fail(http.StatusConflict, "That certificate was already revoked.")
		return
	case err != nil:
		p.log.Error("pkiweb: revoke", "serial", serial, "err", err)
		p.srv.RenderError(c, http.StatusInternalServerError, "The database could not be written. Try again; if it keeps failing, check the daemon's log.")
		return
	}
	c.Redirect(http.StatusSeeOther, CertsPath+"?done=revoked")
}
