package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-net/gatehouse/store"
)

func TestWebhookIsSignedAndRetriedOnFailure(t *testing.T) {
	secret := []byte("s3cret")
	var calls atomic.Int32
	var got Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(SignatureHeader) != Sign(secret, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		json.Unmarshal(body, &got)
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Secret: secret, Link: func(id int64) string { return "https://gh/alerts/1" }}
	a := &store.Alert{ID: 1, Class: "vpn", Severity: "high", FirstSeen: t0, LastSeen: t0, Count: 2, PersonName: "Sam Pupil", SrcMAC: pupilMAC, SrcIP: pupilIP}
	if err := w.Send(context.Background(), store.OutboxItem{ID: 9}, a); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("first send: %v, want the 503 as an error for the outbox to retry", err)
	}
	if err := w.Send(context.Background(), store.OutboxItem{ID: 9}, a); err != nil {
		t.Fatal(err)
	}
	if got.ID != 1 || got.Person != "Sam Pupil" || got.MAC != pupilMAC.String() || got.Link != "https://gh/alerts/1" || got.AttributedBy != "none" {
		t.Errorf("event %+v", got)
	}
	bad := &Webhook{URL: srv.URL, Secret: []byte("wrong")}
	if err := bad.Send(context.Background(), store.OutboxItem{ID: 9}, a); err == nil {
		t.Error("a wrongly signed post was accepted")
	}
}

func TestSyslogMessageIsRFC5424(t *testing.T) {
	s := &Syslog{Hostname: "gatehouse-1"}
	a := store.Alert{ID: 3, Class: "vpn", Severity: "high", FirstSeen: t0, Count: 1, PersonName: `Sam "]\ Pupil`, SrcIP: pupilIP}
	msg := s.Message(a, t0)
	want := `<162>1 2026-03-02T10:41:07Z gatehouse-1 gatehouse - alert [gatehouse@32473 id="3" class="vpn" severity="high"`
	if !strings.HasPrefix(msg, want) {
		t.Errorf("message %q\nwant prefix %q", msg, want)
	}
	if !strings.Contains(msg, `person="Sam \"\]\\ Pupil"`) {
		t.Errorf("param not escaped: %q", msg)
	}
}
