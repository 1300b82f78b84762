package main

import (
	"log/slog"
	"net"
)

// logOptions are the daemon's log handler options. A net.HardwareAddr is a
// []byte, and slog writes byte slices as quoted raw bytes (text) or base64
// (JSON): `mac="\xbeJ7?Eu"`. Every MAC any package logs is rewritten to
// its usual aa:bb:cc:dd:ee:ff form here, once, rather than trusting every
// log call to remember .String().
func logOptions(level slog.Leveler) *slog.HandlerOptions {
	return &slog.HandlerOptions{Level: level, ReplaceAttr: macAsText}
}

// macAsText is the ReplaceAttr that writes MACs as text.
func macAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	switch v := a.Value.Any().(type) {
	case net.HardwareAddr:
		a.Value = slog.StringValue(v.String())
	case *net.HardwareAddr:
		if v != nil {
			a.Value = slog.StringValue(v.String())
		}
	}
	return a
}
