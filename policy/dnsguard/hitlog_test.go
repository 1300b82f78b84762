package dnsguard

import "testing"

// The flusher is woken by the first note into an empty buffer, and only
// then: an idle guard must not wake the process.
func TestHitLogWakesOnFirstNote(t *testing.T) {
	l := newHitLog()
	pending := func() bool {
		select {
		case <-l.wake:
			return true
		default:
			return false
		}
	}
	if pending() {
		t.Fatal("a new, empty hit log asks for a flush")
	}
	l.add(hitNote{})
	l.add(hitNote{})
	if !pending() {
		t.Fatal("the first note did not wake the flusher")
	}
	if pending() {
		t.Fatal("a note into a non-empty buffer woke the flusher again")
	}
	l.give(l.take())
	l.addAll([]hitNote{{}, {}})
	if !pending() {
		t.Fatal("a batch into the emptied buffer did not wake the flusher")
	}
	l.addAll(nil)
	if pending() {
		t.Fatal("an empty batch woke the flusher")
	}
}
