package inspect

import "testing"

func TestBypassServiceNamesCoverDoHAndVPNProvidersOnly(t *testing.T) {
	names := BypassServiceNames()
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	for _, want := range []string{"cloudflare-dns.com", "dns.google", "nordvpn.com", "protonvpn.com"} {
		if !has[want] {
			t.Errorf("%s is missing from the bypass names", want)
		}
	}
	for _, ordinary := range []string{"google.com", "www.google.com", "bbc.co.uk", "cloudflare.com"} {
		if has[ordinary] {
			t.Errorf("ordinary site %s would be blocked", ordinary)
		}
	}
}
