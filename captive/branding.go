package captive

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"image"
	"image/color"
	_ "image/jpeg" // uploads may be JPEG; they are re-encoded as PNG
	"image/png"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// Limits of a logo upload. The upload is decoded and drawn again into a
// fresh PNG no bigger than logoMaxW × logoMaxH, so what is stored and
// served is pixels only: no SVG script, no metadata, no polyglot file.
const (
	maxLogoUpload   = 1 << 20 // bytes, as uploaded
	maxLogoPixels   = 4000    // width or height, as uploaded
	logoMaxW        = 480
	logoMaxH        = 160
	brandingMaxBody = maxLogoUpload + 64<<10
)

// minContrast is WCAG AA for normal text: white text on the school's
// colour (and the colour as link text on white) must reach it, so the
// branded pages keep axe-core's colour-contrast check at 0.
const minContrast = 4.5

var hexColour = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// checkColour reads "#rrggbb" and checks its contrast with white. It
// returns the colour in lower case, or a message for the person.
func checkColour(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	if !hexColour.MatchString(s) {
		return "", "A colour is # and six hexadecimal digits, like #0b3d6e."
	}
	s = strings.ToLower(s)
	if r := contrastWithWhite(s); r < minContrast {
		return "", fmt.Sprintf("White text on %s has a contrast of %.1f:1; it needs at least %.1f:1 to be readable (WCAG AA). Choose a darker colour.", s, r, minContrast)
	}
	return s, ""
}

// contrastWithWhite is the WCAG 2 contrast ratio of white against the
// "#rrggbb" colour c.
func contrastWithWhite(c string) float64 {
	var rgb [3]float64
	for i := range rgb {
		var v int
		fmt.Sscanf(c[1+2*i:3+2*i], "%02x", &v)
		x := float64(v) / 255
		if x <= 0.04045 {
			rgb[i] = x / 12.92
		} else {
			rgb[i] = math.Pow((x+0.055)/1.055, 2.4)
		}
	}
	l := 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
	return 1.05 / (l + 0.05)
}

// checkLogo decodes an uploaded PNG or JPEG and draws it again, scaled to
// fit logoMaxW × logoMaxH, as a PNG. It returns the PNG or a message for
// the person.
func checkLogo(raw []byte) ([]byte, string) {
	if len(raw) > maxLogoUpload {
		return nil, "The logo file is over 1 MB; save a smaller PNG or JPEG."
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil || (format != "png" && format != "jpeg") {
		return nil, "The logo must be a PNG or JPEG image."
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxLogoPixels || cfg.Height > maxLogoPixels {
		return nil, fmt.Sprintf("The logo must be at most %d × %d pixels.", maxLogoPixels, maxLogoPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, "The logo image could not be read; save it again as a PNG."
	}
	out := scaleToFit(img, logoMaxW, logoMaxH)
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, out); err != nil {
		return nil, "The logo could not be stored."
	}
	if b.Len() > store.MaxLogoBytes {
		return nil, "The logo is too detailed to show on every portal page; use a simpler image."
	}
	return b.Bytes(), ""
}

// scaleToFit draws img into a new image no bigger than w × h, keeping its
// proportions, averaging the source pixels each destination pixel covers.
func scaleToFit(img image.Image, w, h int) *image.NRGBA {
	sb := img.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	scale := math.Min(1, math.Min(float64(w)/float64(sw), float64(h)/float64(sh)))
	dw, dh := max(1, int(float64(sw)*scale)), max(1, int(float64(sh)*scale))
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		y0, y1 := y*sh/dh, max((y+1)*sh/dh, y*sh/dh+1)
		for x := range dw {
			x0, x1 := x*sw/dw, max((x+1)*sw/dw, x*sw/dw+1)
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					c := color.NRGBAModel.Convert(img.At(sb.Min.X+sx, sb.Min.Y+sy)).(color.NRGBA)
					r, g, bl, a, n = r+uint64(c.R), g+uint64(c.G), bl+uint64(c.B), a+uint64(c.A), n+1
				}
			}
			dst.SetNRGBA(x, y, color.NRGBA{uint8(r / n), uint8(g / n), uint8(bl / n), uint8(a / n)})
		}
	}
	return dst
}

// brand is the branding as the portal and the slips use it.
type brand struct {
	LogoURI template.URL // a data: URL of the stored PNG; "" for none
	Colour  template.CSS // "#rrggbb", checked when it was saved; "" for none
}

// currentBrand reads the branding; on a database error the pages show
// the default look rather than fail.
func (p *Portal) currentBrand(ctx context.Context) brand {
	b, err := p.st.CurrentBranding(ctx)
	if err != nil {
		p.log.Error("read branding", "err", err)
		return brand{}
	}
	return p.brandMemo.of(b)
}

// brandMemo keeps the last branding turned into a brand, so that every
// page does not encode the logo again (it changes a few times a year).
type brandMemo struct {
	mu     sync.Mutex
	valid  bool
	colour string
	logo   []byte
	out    brand
}

func (m *brandMemo) of(b store.Branding) brand {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.valid && m.colour == b.Colour && bytes.Equal(m.logo, b.Logo) {
		return m.out
	}
	out := brandOf(b)
	m.valid, m.colour, m.logo, m.out = true, b.Colour, bytes.Clone(b.Logo), out
	return out
}

func brandOf(b store.Branding) brand {
	var out brand
	if len(b.Logo) > 0 {
		out.LogoURI = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Logo))
	}
	// Checked again on the way out: only a colour that passes is ever
	// written into a stylesheet.
	if c, msg := checkColour(b.Colour); msg == "" && c != "" {
		out.Colour = template.CSS(c)
	}
	return out
}

// setBranding saves the logo and colour from the Portal page's form
// (multipart: the logo is a file). A refusal keeps what is stored.
func (a *admin) setBranding(c *httpx.Context) {
	fail := func(msg string) {
		v := a.srv.View(c, "Portal")
		v.Error = msg
		a.renderSettings(c, http.StatusBadRequest, v, nil)
	}
	ctx := c.Request.Context()
	cur, err := a.p.st.CurrentBranding(ctx)
	if err != nil {
		a.p.log.Error("read branding", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The branding could not be read.")
		return
	}
	colour, msg := checkColour(c.PostForm("colour"))
	if msg != "" {
		fail(msg)
		return
	}
	next := store.Branding{Logo: cur.Logo, Colour: colour}
	if c.PostForm("remove_logo") == "yes" {
		next.Logo = nil
	}
	if form, err := c.MultipartForm(); err == nil && len(form.File["logo"]) > 0 && form.File["logo"][0].Size > 0 {
		fh := form.File["logo"][0]
		if fh.Size > maxLogoUpload {
			fail("The logo file is over 1 MB; save a smaller PNG or JPEG.")
			return
		}
		f, err := fh.Open()
		if err != nil {
			fail("The logo upload could not be read; try again.")
			return
		}
		var raw bytes.Buffer
		_, err = raw.ReadFrom(io.LimitReader(f, maxLogoUpload+1))
		f.Close()
		if err != nil || raw.Len() > maxLogoUpload {
			fail("The logo file is over 1 MB; save a smaller PNG or JPEG.")
			return
		}
		logo, msg := checkLogo(raw.Bytes())
		if msg != "" {
			fail(msg)
			return
		}
		next.Logo = logo
	}
	if err := a.p.st.SetBranding(ctx, web.Actor(c), next, a.p.now()); err != nil {
		a.p.log.Error("set branding", "err", err)
		a.srv.RenderError(c, http.StatusInternalServerError, "The branding could not be saved.")
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal?branded=1")
}

// brandCSS is the slips' colour, a stylesheet of its own because the
// admin pages allow no inline style.
func (a *admin) brandCSS(c *httpx.Context) {
	b := a.p.currentBrand(c.Request.Context())
	css := ""
	if b.Colour != "" {
		css = fmt.Sprintf(".slip h2{color:%s}.slip{border-color:%s}\n", b.Colour, b.Colour)
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/css; charset=utf-8", []byte(css))
}
