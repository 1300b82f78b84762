package dnsguard

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCacheTTL caps how long an answer is kept whatever its TTL says, so a
// change in the school's filter reaches clients within a day at worst.
const maxCacheTTL = 24 * time.Hour

// negativeTTL is used for an NXDOMAIN without an SOA to take the TTL from.
const negativeTTL = 60 * time.Second

type cacheKey struct {
	name   string
	qtype  uint16
	qclass uint16
	do     bool
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
}

// cache is a bounded LRU of upstream answers that honours their TTLs.
type cache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[cacheKey]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), items: map[cacheKey]*list.Element{}}
}

func keyOf(q dns.Question, req *dns.Msg) cacheKey {
	do := false
	if o := req.IsEdns0(); o != nil {
		do = o.Do()
	}
	return cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, do: do}
}

// get returns a copy of the cached answer with TTLs reduced by its age.
func (c *cache) get(k cacheKey, now time.Time) *dns.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return nil
	}
	c.ll.MoveToFront(el)
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}

// put stores m if it is cacheable: a complete success or NXDOMAIN with a
// non-zero TTL.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	if c.max <= 0 || m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return
	}
	ttl, ok := ttlOf(m)
	if !ok || ttl <= 0 {
		return
	}
	ttl = min(ttl, maxCacheTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: k, msg: m.Copy(), stored: now, expires: now.Add(ttl)}
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// ttlOf is the smallest TTL among the answer and authority records; for a
// negative answer it is the SOA's minimum (RFC 2308).
func ttlOf(m *dns.Msg) (time.Duration, bool) {
	var least uint32
	found := false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			ttl := rr.Header().Ttl
			if soa, ok := rr.(*dns.SOA); ok && len(m.Answer) == 0 {
				ttl = min(ttl, soa.Minttl)
			}
			if !found || ttl < least {
				least, found = ttl, true
			}
		}
	}
	if !found {
		if m.Rcode == dns.RcodeNameError {
			return negativeTTL, true
		}
		return 0, false
	}
	return time.Duration(least) * time.Second, true
}
