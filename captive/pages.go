// This file: the portal's pages and its intercepted-probe answers.

package captive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-net/gatehouse/events"
	"github.com/gatehouse-net/gatehouse/policy"
	"github.com/gatehouse-net/gatehouse/store"
)

// templateFS holds the portal pages, parsed once by New.
//
//go:embed templates/*.html
var templateFS embed.FS

// DefaultAUP is shown until a network manager sets the school's own.
const DefaultAUP = `This Wi-Fi is provided by the school for visitors. By connecting you agree to use it lawfully and responsibly.

Do not try to get round the school's filtering, access or share illegal, harmful or offensive material, or interfere with the network or other people's devices.

Your device's address and the times you used the network are recorded, and may be checked by the school to keep pupils safe.`

// DefaultAUPWelsh is the Welsh text of DefaultAUP.
const DefaultAUPWelsh = `Mae'r ysgol yn darparu'r Wi-Fi hwn ar gyfer ymwelwyr. Drwy gysylltu rydych yn cytuno i'w ddefnyddio'n gyfreithlon ac yn gyfrifol.

Peidiwch â cheisio osgoi hidlo'r ysgol, cael gafael ar ddeunydd anghyfreithlon, niweidiol neu dramgwyddus na'i rannu, nac ymyrryd â'r rhwydwaith na dyfeisiau pobl eraill.

Mae cyfeiriad eich dyfais a'r amseroedd y gwnaethoch ddefnyddio'r rhwydwaith yn cael eu cofnodi, a gall yr ysgol eu gwirio i gadw disgyblion yn ddiogel.`

// currentAUP returns the AUP in force, or the built-in default (with its
// own version hash) when the school has set none.
func (p *Portal) currentAUP(ctx context.Context) store.PortalAUP {
	a, err := p.st.CurrentPortalAUP(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Error("read AUP", "err", err)
		}
		return store.PortalAUP{Version: AUPVersion(DefaultAUP, DefaultAUPWelsh), TextEN: DefaultAUP, TextCY: DefaultAUPWelsh}
	}
	return a
}

// pageData is what the portal templates are executed with.
type pageData struct {
	Lang, OtherLang, OtherLangURL string
	T                             map[string]string
	Title, School                 string
	AUP                           []string
	Code, Name, Company           string
	Error, Notice                 string
	// ErrorField is the id of the field the error is about, which the
	// error summary links to ("code" or "accept"); "" for none.
	ErrorField            string
	Left, Until, UntilISO string
	VenueURL              string
	Brand                 brand
}

func (p *Portal) page(r *http.Request, lang, title string) *pageData {
	d := &pageData{Lang: lang, Title: title, School: p.school, VenueURL: p.venue, T: p.texts[langEN],
		Brand: p.currentBrand(r.Context())}
	if t, ok := p.texts[lang]; ok {
		d.T = t
	}
	d.OtherLang = langCY
	if lang == langCY {
		d.OtherLang = langEN
	}
	q := url.Values{"lang": {d.OtherLang}}
	if c := r.URL.Query().Get("code"); c != "" && len(c) <= 32 {
		q.Set("code", c)
	}
	path := r.URL.Path
	if path != "/status" {
		path = "/"
	}
	d.OtherLangURL = path + "?" + q.Encode()
	return d
}

func (p *Portal) render(w http.ResponseWriter, status int, name string, d *pageData) {
	body, ok := p.renderBytes(w, name, d)
	if ok {
		writePage(w, status, d.Lang, body)
	}
}

// renderBytes executes template name with d; on an error it answers w
// with a 500 and reports false.
func (p *Portal) renderBytes(w http.ResponseWriter, name string, d *pageData) ([]byte, bool) {
	var b bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&b, name, d); err != nil {
		p.log.Error("render portal page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return nil, false
	}
	return b.Bytes(), true
}

func writePage(w http.ResponseWriter, status int, lang string, body []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", lang)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func aupParagraphs(text string) []string {
	var out []string
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if para = strings.TrimSpace(para); para != "" {
			out = append(out, para)
		}
	}
	return out
}

// home shows the status page to an admitted device and the sign-in page to
// everyone else.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(r)
	c := p.lookup(r.Context(), r)
	if c.admitted {
		p.renderStatus(w, r, lang, c.v, "")
		return
	}
	code := r.URL.Query().Get("code")
	if len(code) > 32 {
		code = ""
	}
	p.renderLogin(w, r, http.StatusOK, lang, code, "", "", "")
}

func (p *Portal) renderLogin(w http.ResponseWriter, r *http.Request, status int, lang, code, name, company, msg string) {
	d := p.page(r, lang, tr(lang, "title"))
	aup := p.currentAUP(r.Context())
	// The plain page (no code, nothing typed, no message) is the same for
	// every visitor: it is what a rush asks for, so it is rendered once
	// per language, path, AUP and branding (pagecache.go).
	q := r.URL.Query()
	plain := status == http.StatusOK && code == "" && name == "" && company == "" && msg == "" &&
		q.Get("code") == "" && q.Get("out") != "1"
	key := loginPageKey{lang: lang, path: r.URL.Path, aup: aup.Version, brand: d.Brand}
	if plain {
		if body, ok := p.loginPages.get(key); ok {
			writePage(w, status, lang, body)
			return
		}
	}
	text := aup.TextEN
	if lang == langCY && aup.TextCY != "" {
		text = aup.TextCY
	}
	d.AUP = aupParagraphs(text)
	d.Code, d.Name, d.Company, d.Error = code, name, company, msg
	if msg != "" {
		d.ErrorField = "code"
		if msg == tr(lang, "err_accept") {
			d.ErrorField = "accept"
		}
	}
	if r.URL.Query().Get("out") == "1" {
		d.Notice = tr(lang, "logged_out")
	}
	if !plain {
		p.render(w, status, "login", d)
		return
	}
	body, ok := p.renderBytes(w, "login", d)
	if !ok {
		return
	}
	p.loginPages.put(key, body)
	writePage(w, status, lang, body)
}

func (p *Portal) renderStatus(w http.ResponseWriter, r *http.Request, lang string, v store.Voucher, msg string) {
	d := p.page(r, lang, tr(lang, "connected"))
	until := v.Until()
	left := until.Sub(p.now())
	if left < 0 {
		left = 0
	}
	d.Left = durationText(lang, left)
	d.Until = dateTimeText(lang, until.In(p.loc))
	d.UntilISO = until.In(p.loc).Format(time.RFC3339)
	d.Error = msg
	p.render(w, http.StatusOK, "status", d)
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	lang := pickLang(r)
	code, name, company := r.PostFormValue("code"), r.PostFormValue("name"), r.PostFormValue("company")
	if len(code) > 32 {
		code = code[:32]
	}
	if r.PostFormValue("accept") != "yes" {
		p.renderLogin(w, r, http.StatusBadRequest, lang, code, name, company, tr(lang, "err_accept"))
		return
	}
	ctx := r.Context()
	ip := peerAddr(r)
	mac, err := p.nb.MACFor(ip)
	if err != nil {
		mac = nil
	}
	_, err = p.redeem(ctx, code, mac, ip, name, company)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		status := http.StatusForbidden
		if ref.outcome == outcomeThrottled {
			status = http.StatusTooManyRequests
		}
		p.renderLogin(w, r, status, lang, code, name, company, ref.msg(lang))
		return
	case err != nil:
		p.log.Error("redeem code", "mac", mac, "ip", ip, "err", err)
		p.renderLogin(w, r, http.StatusInternalServerError, lang, code, name, company, tr(lang, "err_internal"))
		return
	}
	http.Redirect(w, r, "/status?lang="+lang, http.StatusSeeOther)
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(r)
	ctx := r.Context()
	c := p.lookup(ctx, r)
	if c.admitted {
		if err := p.st.SignOutVoucherDevice(ctx, c.v.ID, c.mac, p.now()); err != nil {
			p.log.Error("sign out guest", "mac", c.mac, "err", err)
			p.renderStatus(w, r, lang, c.v, tr(lang, "err_internal"))
			return
		}
		if err := p.adm.Evict(ctx, policy.Device{MAC: c.mac, IP: c.ip}); err != nil {
			p.log.Error("evict guest on logout", "mac", c.mac, "ip", c.ip, "err", err)
		}
		events.Publish(p.hub, events.SessionEnded{Source: events.SourcePortal, At: p.now(), VoucherID: c.v.ID, MAC: c.mac, IP: c.ip, Reason: "logout"})
		p.log.Info("guest logged out", "voucher", c.v.ID, "mac", c.mac, "ip", c.ip)
	}
	http.Redirect(w, r, "/?out=1&lang="+lang, http.StatusSeeOther)
}

// apiState is the RFC 8908 API's JSON.
type apiState struct {
	Captive          bool   `json:"captive"`
	UserPortalURL    string `json:"user-portal-url,omitempty"`
	VenueInfoURL     string `json:"venue-info-url,omitempty"`
	SecondsRemaining *int64 `json:"seconds-remaining,omitempty"`
	CanExtendSession *bool  `json:"can-extend-session,omitempty"`
}

func (p *Portal) api(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c := p.lookup(r.Context(), r)
	s := apiState{Captive: !c.admitted, UserPortalURL: p.base.String() + "/", VenueInfoURL: p.venue}
	if c.admitted {
		secs := int64(c.v.Until().Sub(p.now()) / time.Second)
		if secs < 0 {
			secs = 0
		}
		no := false
		s.SecondsRemaining, s.CanExtendSession = &secs, &no
	}
	b, err := json.Marshal(s)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/captive+json")
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(b)
}

// probe answers, by path: what each OS expects from the open internet.
var probeAnswers = map[string]struct {
	status int
	ctype  string
	body   string
}{
	"/hotspot-detect.html":       {200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"},
	"/library/test/success.html": {200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"},
	"/generate_204":              {204, "", ""},
	"/gen_204":                   {204, "", ""},
	"/connecttest.txt":           {200, "text/plain", "Microsoft Connect Test"},
	"/ncsi.txt":                  {200, "text/plain", "Microsoft NCSI"},
	"/canonical.html":            {200, "text/html", `<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>`},
	"/success.txt":               {200, "text/plain", "success\n"},
}

// intercepted answers web traffic for other hosts that the kernel sent
// here: the OS probes and any page a visitor opens before signing in. A
// device not admitted is sent to the portal, which makes every OS show its
// sign-in sheet; an admitted one (whose kernel admission lookup has just
// restored) gets the answer the open internet would give a probe.
func (p *Portal) intercepted(w http.ResponseWriter, r *http.Request) {
	// The client thinks it talks to the site; the kernel's NAT entry ties
	// this connection to the portal for as long as it lives. Closing it
	// makes the next request open a new one, which, once the device is
	// admitted, goes to the internet: otherwise a browser reuses the
	// kept-alive connection and keeps landing here after signing in.
	w.Header().Set("Connection", "close")
	c := p.lookup(r.Context(), r)
	if !c.admitted {
		target := p.base.String() + "/"
		if lang := pickLang(r); lang == langCY {
			target += "?lang=cy"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><title>Sign in</title><p><a href=\"%s\">Sign in to the Wi-Fi</a></p></html>\n", template.HTMLEscapeString(target))
		}
		return
	}
	if a, ok := probeAnswers[r.URL.Path]; ok {
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, a.body)
		}
		return
	}
	http.Redirect(w, r, p.base.String()+"/status", http.StatusFound)
}

// AUPVersion is the version of a pair of AUP texts: a hash of both, so an
// acceptance names exactly the words the visitor was shown, and publishing
// the same texts again is the same version.
func AUPVersion(en, cy string) string {
	h := sha256.New()
	h.Write([]byte("gatehouse-aup-v1\x00"))
	h.Write([]byte(en))
	h.Write([]byte{0})
	h.Write([]byte(cy))
	return hex.EncodeToString(h.Sum(nil))
}
