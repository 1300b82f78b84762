package config

import "testing"

func TestRADIUSStoreNTHash(t *testing.T) {
	c, err := Parse("/etc/gh/f.yaml", []byte(minimal))
	if err != nil || c.RADIUS.StoreNTHash {
		t.Fatalf("default: %v %v", c.RADIUS.StoreNTHash, err)
	}
	c, err = Parse("/etc/gh/f.yaml", []byte(minimal+"radius:\n  store_nt_hash: true\n"))
	if err != nil || !c.RADIUS.StoreNTHash {
		t.Fatalf("on: %v %v", c.RADIUS.StoreNTHash, err)
	}
	if _, err := Parse("/etc/gh/f.yaml", []byte(minimal+"radius:\n  store_nt_hash: yes please\n")); err == nil {
		t.Fatal("a non-boolean was accepted")
	}
}
