// This file: the plain sign-in page, rendered once and served as bytes.

package captive

import "sync"

// loginPageKey is what the plain sign-in page depends on besides the
// portal's fixed settings (school name, venue URL): the language, the path
// it was asked on (its language link points back there), the AUP in force
// and the branding.
type loginPageKey struct {
	lang, path string
	aup        string // the AUP's version
	brand      brand
}

// loginPagesMax bounds the cache: the language and the path come from the
// request, so only their known values may be cached (renderLogin asks
// only for "/" and "/status" in English or Welsh), and a change of AUP or
// branding replaces the pages rather than adding to them.
const loginPagesMax = 8

// loginPages holds the plain sign-in page as rendered. At a rush every
// visitor's sheet asks for it, and executing the template was a tenth of
// the portal's work per sign-in.
type loginPages struct {
	mu sync.Mutex
	m  map[loginPageKey][]byte
}

func (c *loginPages) get(k loginPageKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[k]
	return b, ok
}

// put keeps body for k (the caller does not change it afterwards). Pages
// of an older AUP or branding, or with a path other than the portal's
// own, are not kept.
func (c *loginPages) put(k loginPageKey, body []byte) {
	if k.path != "/" && k.path != "/status" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for old := range c.m {
		if old.aup != k.aup || old.brand != k.brand {
			delete(c.m, old)
		}
	}
	if c.m == nil {
		c.m = map[loginPageKey][]byte{}
	}
	if len(c.m) >= loginPagesMax {
		clear(c.m)
	}
	c.m[k] = body
}
