package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// Issue 15: the daemon's log printed MACs as raw bytes (mac="\xbeJ7?Eu").
func TestLogsPrintMACsAsText(t *testing.T) {
	mac := net.HardwareAddr{0xbe, 0x4a, 0x37, 0x3f, 0x45, 0x75}
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
		want string
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, logOptions(nil)) }, "mac=be:4a:37:3f:45:75"},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, logOptions(nil)) }, `"mac":"be:4a:37:3f:45:75"`},
	} {
		var b bytes.Buffer
		log := slog.New(h.new(&b))
		log.Info("dhcp: lease", "mac", mac, slog.Group("device", "mac", mac))
		log.With("mac", &mac).Info("again")
		out := b.String()
		if n := strings.Count(out, strings.TrimPrefix(strings.TrimPrefix(h.want, "mac="), `"mac":`)); n != 3 {
			t.Errorf("%s: %d MACs written as text, want 3:\n%s", h.name, n, out)
		}
		if strings.Contains(out, `\x`) || strings.Contains(out, "vko3P0V1") {
			t.Errorf("%s: raw MAC bytes in the log:\n%s", h.name, out)
		}
	}
}
