package mschapv2

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// interop reads testdata/interop.txt: a real exchange between FreeRADIUS
// and wpa_supplicant's eapol_test.
func interop(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/interop.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		b, err := hex.DecodeString(fields[1])
		if err != nil {
			t.Fatalf("%s: %v", fields[0], err)
		}
		out[fields[0]] = b
	}
	return out
}

// Our server, given FreeRADIUS's identifier and challenge, sends the same
// Challenge bytes, accepts wpa_supplicant's real Response, answers with the
// authenticator response FreeRADIUS sent, and derives the MSK eapol_test
// derived and the MPPE keys FreeRADIUS put in the Access-Accept.
func TestInteropWithFreeRADIUSAndWPASupplicant(t *testing.T) {
	x := interop(t)
	ch := x["challenge"]
	s, err := NewServer(Config{
		Lookup:     users(map[string]string{"bob": "hello world pw"}),
		ServerName: "freeradius-3.2.1",
		Identity:   "bob",
		// The identifier, then the challenge, as FreeRADIUS chose them.
		Rand: bytes.NewReader(append([]byte{ch[1]}, ch[5:21]...)),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ch) {
		t.Fatalf("challenge\n got %x\nwant %x", got, ch)
	}
	step, err := s.Handle(context.Background(), x["response"])
	if err != nil {
		t.Fatal(err)
	}
	// FreeRADIUS sends no " M=" part; ours adds " M=OK", which
	// wpa_supplicant accepts (it reads the 42 characters after "S=").
	want := string(x["success"][4:])
	if msg := string(step.Reply[4:]); msg != want+" M=OK" || !bytes.Equal(step.Reply[:2], x["success"][:2]) {
		t.Fatalf("success %q, want %q + M=OK", msg, want)
	}
	step, err = s.Handle(context.Background(), x["ack"])
	if err != nil || !step.Result.Success || step.Result.Username != "bob" {
		t.Fatalf("%v %+v", err, step.Result)
	}
	k := step.Result.Keys
	if !bytes.Equal(k.MSK(), x["msk"]) {
		t.Fatalf("MSK %x, eapol_test derived %x", k.MSK(), x["msk"])
	}
	if !bytes.Equal(k.MasterSendKey[:], x["send_key"]) || !bytes.Equal(k.MasterReceiveKey[:], x["recv_key"]) {
		t.Fatalf("MPPE keys %x / %x", k.MasterSendKey, k.MasterReceiveKey)
	}
}
