package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = "X-Gatehouse-Signature"

// Event is the JSON a webhook receives and a syslog message carries as
// structured data: the alert's DfE fields, without the DSL's notes.
type Event struct {
	ID           int64     `json:"id"`
	Class        string    `json:"class"`
	Title        string    `json:"title"`
	Severity     string    `json:"severity"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Count        int       `json:"count"`
	Segment      string    `json:"segment,omitempty"`
	IP           string    `json:"ip,omitempty"`
	MAC          string    `json:"mac,omitempty"`
	DeviceName   string    `json:"device_name,omitempty"`
	Manufacturer string    `json:"manufacturer,omitempty"`
	Person       string    `json:"person,omitempty"`
	PersonGroup  string    `json:"person_group,omitempty"`
	Visitor      string    `json:"visitor,omitempty"`
	Room         string    `json:"room,omitempty"`
	AccessPoint  string    `json:"access_point,omitempty"`
	SSID         string    `json:"ssid,omitempty"`
	AttributedBy string    `json:"attributed_by"`
	Destination  string    `json:"destination,omitempty"`
	Detail       string    `json:"detail,omitempty"`
	Link         string    `json:"link,omitempty"`
}

// EventOf builds the event for an alert; link may be nil.
func EventOf(a store.Alert, link func(int64) string) Event {
	e := Event{ID: a.ID, Class: a.Class, Title: MeaningOf(a.Class).Title, Severity: a.Severity, FirstSeen: a.FirstSeen.UTC(),
		LastSeen: a.LastSeen.UTC(), Count: a.Count, Segment: a.Segment, DeviceName: a.DeviceName, Manufacturer: a.Manufacturer,
		Person: a.PersonName, PersonGroup: a.PersonGroup, Visitor: a.Visitor, Room: a.Room, AccessPoint: a.AccessPoint, SSID: a.SSID,
		AttributedBy: a.AttributedBy, Destination: a.Destination, Detail: a.Detail}
	if e.AttributedBy == "" {
		e.AttributedBy = "none"
	}
	if a.SrcIP.IsValid() {
		e.IP = a.SrcIP.String()
	}
	if len(a.SrcMAC) > 0 {
		e.MAC = a.SrcMAC.String()
	}
	if link != nil {
		e.Link = link(a.ID)
	}
	return e
}

// Webhook posts each alert as JSON, signed with HMAC-SHA256 in
// SignatureHeader. Any answer but 2xx is a failure the outbox retries.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client // nil: a client with the outbox's timeout
	Link   func(int64) string
}

// Sign returns the SignatureHeader value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send implements Channel.
func (w *Webhook) Send(ctx context.Context, it store.OutboxItem, a *store.Alert) error {
	if a == nil {
		return errors.New("webhook: outbox item has no alert")
	}
	body, err := json.Marshal(EventOf(*a, w.Link))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-alerts")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	req.Header.Set("X-Gatehouse-Delivery", fmt.Sprint(it.ID))
	c := w.Client
	if c == nil {
		c = &http.Client{}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s answered %s", w.URL, resp.Status)
	}
	return nil
}
