package captive

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-net/gatehouse/web/webtest"
)

func TestCheckColourKeepsContrast(t *testing.T) {
	if c, msg := checkColour("#0B3D6E"); msg != "" || c != "#0b3d6e" {
		t.Errorf("a dark blue was refused: %q %q", c, msg)
	}
	if _, msg := checkColour("#ffdd00"); !strings.Contains(msg, "contrast of 1.3:1") {
		t.Errorf("yellow (white text unreadable) was not refused with its contrast: %q", msg)
	}
	for _, bad := range []string{"red", "#fff", "#12345g", "#1234567", "url(x)", "#000000;background:url(x)"} {
		if _, msg := checkColour(bad); msg == "" {
			t.Errorf("%q accepted as a colour", bad)
		}
	}
	if r := contrastWithWhite("#000000"); r < 20.9 || r > 21.1 {
		t.Errorf("black on white = %.2f, want 21", r)
	}
}

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// postBranding sends the Portal page's branding form as user, with a file.
func postBranding(t *testing.T, a *adminHarness, user, colour, filename string, file []byte) webtest.Response {
	t.Helper()
	br := a.browsers[user]
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", br.CSRFFrom("/portal"))
	_ = mw.WriteField("colour", colour)
	if file != nil {
		fw, err := mw.CreateFormFile("logo", filename)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, a.site.URL+"/portal/branding", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", a.site.URL)
	return br.Do(req)
}

var dataPNG = regexp.MustCompile(`src="data:image/png;base64,([A-Za-z0-9+/=]+)"`)

// Issue 15: the school's logo and colour, uploaded on the Portal page,
// show on the portal and the slips; a colour white text cannot be read on
// and a file that is not a PNG or JPEG are refused.
func TestBrandingUploadShowsOnPortalAndSlips(t *testing.T) {
	a := newAdminHarness(t)
	big := pngOf(t, 1200, 400)
	r := postBranding(t, a, "netman", "#123456", "logo.png", big)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/portal?branded=1" {
		t.Fatalf("upload: %d %q\n%s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	b, err := a.st.CurrentBranding(context.Background())
	if err != nil || b.Colour != "#123456" {
		t.Fatalf("stored branding %+v %v", b, err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b.Logo))
	if err != nil || format != "png" || cfg.Width != 480 || cfg.Height != 160 {
		t.Errorf("stored logo: %s %dx%d (%v), want a PNG redrawn to 480x160", format, cfg.Width, cfg.Height, err)
	}
	if bytes.Equal(b.Logo, big) {
		t.Error("the uploaded bytes were stored as they came")
	}
	if e := a.site.LastAudit(t); e.Action != "portal.branding" || !strings.Contains(e.After, `"colour":"#123456"`) {
		t.Errorf("not audited: %+v", e)
	}

	// The portal: logo inline (its CSP allows only data: images), colour
	// in the header and buttons.
	res := a.do("GET", portalHost, "/", a.device(31), nil)
	page := html.UnescapeString(readBody(t, res))
	m := dataPNG.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "header{background:#123456}") {
		t.Fatalf("the portal shows no logo or colour:\n%s", page)
	}
	if got, _ := base64.StdEncoding.DecodeString(m[1]); !bytes.Equal(got, b.Logo) {
		t.Error("the portal's logo is not the stored one")
	}
	// The slips.
	loc, pr := a.issueAndPrint("frontdesk", url.Values{"duration": {"2h"}})
	if !dataPNG.MatchString(html.UnescapeString(pr.Body)) || !strings.Contains(pr.Body, `href="/vouchers/brand.css"`) {
		t.Errorf("the slips at %s show no logo:\n%s", loc, pr.Body)
	}
	if _, css := a.as("frontdesk", "GET", "/vouchers/brand.css", nil); !strings.Contains(css, ".slip h2{color:#123456}") {
		t.Errorf("brand.css = %q", css)
	}

	// Refusals keep what is stored.
	for _, c := range []struct {
		name, colour, file string
		body               []byte
		want               string
	}{
		{"a light colour", "#ffdd00", "", nil, "Choose a darker colour."},
		{"an SVG", "#123456", "logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "must be a PNG or JPEG"},
		{"a GIF", "#123456", "logo.gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "must be a PNG or JPEG"},
		{"a huge image", "#123456", "huge.png", pngOf(t, 4001, 1), "at most 4000"},
	} {
		r := postBranding(t, a, "netman", c.colour, c.file, c.body)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, c.want) {
			t.Errorf("%s: %d, want 400 saying %q", c.name, r.StatusCode, c.want)
		}
	}
	if after, _ := a.st.CurrentBranding(context.Background()); after.Colour != "#123456" || !bytes.Equal(after.Logo, b.Logo) {
		t.Error("a refused upload changed the branding")
	}
	if r := postBranding(t, a, "frontdesk", "#123456", "", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("reception set the branding: %d", r.StatusCode)
	}
}
