package web

import (
	"encoding/base64"
	"fmt"
	"html/template"

	"github.com/skip2/go-qrcode"
)

// QRDataURL draws payload as a 220 px PNG QR code (medium error
// correction) in a data: URL, for an <img> on a page: the admin pages' CSP
// allows data: images, and nothing is fetched or stored. The visitor slips
// and the personal key card print them.
func QRDataURL(payload string) (template.URL, error) {
	png, err := qrcode.Encode(payload, qrcode.Medium, 220)
	if err != nil {
		return "", fmt.Errorf("web: QR code: %w", err)
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}
