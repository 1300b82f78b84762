package inspect

import (
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// leafCert is what inspection reads of a server's certificate: the
// subject's and issuer's naming attributes and the DNS names. It walks
// the DER itself rather than calling crypto/x509, which also decodes the
// public key, the validity times and every extension: a parse per TLS 1.2
// handshake was the largest cost of inspecting new flows. The slices point
// into the DER and are reused from one certificate to the next.
type leafCert struct {
	subject, issuer []certAttr
	dnsNames        [][]byte
}

// certAttr is one naming attribute: its short name (CN, O, OU, C, L, ST)
// and its value as encoded (BMPString values are decoded to UTF-8).
type certAttr struct {
	kind  string
	value []byte
}

// attrKind names the X.520 attributes (OID 2.5.4.n) the lists look at.
func attrKind(n byte) string {
	switch n {
	case 3:
		return "CN"
	case 6:
		return "C"
	case 7:
		return "L"
	case 8:
		return "ST"
	case 10:
		return "O"
	case 11:
		return "OU"
	}
	return ""
}

// parse reads der (an X.509 certificate) into c, reporting whether it
// has the certificate's shape as far as the fields read.
func (c *leafCert) parse(der []byte) bool {
	c.subject, c.issuer, c.dnsNames = c.subject[:0], c.issuer[:0], c.dnsNames[:0]
	in := cryptobyte.String(der)
	var cert, tbs, issuer, subject cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serial number
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature algorithm
		!tbs.ReadASN1(&issuer, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.ReadASN1(&subject, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) { // subject public key info
		return false
	}
	var ok bool
	if c.issuer, ok = readRDNs(issuer, c.issuer); !ok {
		return false
	}
	if c.subject, ok = readRDNs(subject, c.subject); !ok {
		return false
	}
	var exts cryptobyte.String
	var has bool
	if !tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific()) || !tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific()) ||
		!tbs.ReadOptionalASN1(&exts, &has, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return false
	}
	if !has {
		return true
	}
	var list cryptobyte.String
	if !exts.ReadASN1(&list, cbasn1.SEQUENCE) {
		return false
	}
	for !list.Empty() {
		var ext, oid, val cryptobyte.String
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) || !ext.ReadASN1(&val, cbasn1.OCTET_STRING) {
			return false
		}
		if string(oid) != "\x55\x1d\x11" { // subjectAltName, 2.5.29.17
			continue
		}
		var names cryptobyte.String
		if !val.ReadASN1(&names, cbasn1.SEQUENCE) {
			return false
		}
		for !names.Empty() {
			var name cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&name, &tag) {
				return false
			}
			if tag == cbasn1.Tag(2).ContextSpecific() && len(c.dnsNames) < 64 { // dNSName
				c.dnsNames = append(c.dnsNames, name)
			}
		}
	}
	return true
}

// readRDNs appends the naming attributes of an RDNSequence.
func readRDNs(s cryptobyte.String, out []certAttr) ([]certAttr, bool) {
	for !s.Empty() {
		var set cryptobyte.String
		if !s.ReadASN1(&set, cbasn1.SET) {
			return out, false
		}
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !atv.ReadAnyASN1(&val, &tag) {
				return out, false
			}
			if len(oid) != 3 || oid[0] != 0x55 || oid[1] != 0x04 || len(out) >= 32 {
				continue
			}
			kind := attrKind(oid[2])
			if kind == "" {
				continue
			}
			v := []byte(val)
			if tag == 30 { // BMPString: UCS-2, big-endian
				v = bmpToUTF8(v)
			}
			out = append(out, certAttr{kind, v})
		}
	}
	return out, true
}

func bmpToUTF8(b []byte) []byte {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return []byte(string(utf16.Decode(u)))
}

// lastAttr returns the value of the last attribute of kind, or "": the
// one crypto/x509 would report (pkix.Name keeps the last CN it meets).
func lastAttr(attrs []certAttr, kind string) string {
	for i := len(attrs) - 1; i >= 0; i-- {
		if attrs[i].kind == kind {
			return string(attrs[i].value)
		}
	}
	return ""
}

// countAttr counts the attributes of kind.
func countAttr(attrs []certAttr, kind string) int {
	n := 0
	for _, a := range attrs {
		if a.kind == kind {
			n++
		}
	}
	return n
}

// nameHas reports whether the name carries marker: "O=Proton" is an O
// attribute whose value starts with "Proton" (as a substring of the
// RFC 2253 string, which the lists were written against, would be); a
// marker without "=" may appear in any attribute's value.
func nameHas(attrs []certAttr, marker string) bool {
	kind, val, typed := strings.Cut(marker, "=")
	for _, a := range attrs {
		switch {
		case typed && a.kind == kind && strings.HasPrefix(string(a.value), val):
			return true
		case !typed && strings.Contains(string(a.value), marker):
			return true
		}
	}
	return false
}

// nameString renders a name for evidence, attributes in certificate
// order ("C=US,O=Example,CN=www.example.com").
func nameString(attrs []certAttr) string {
	var b strings.Builder
	for i, a := range attrs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.kind)
		b.WriteByte('=')
		b.Write(a.value)
	}
	return b.String()
}
