package quic

import "encoding/binary"

// MaxCrypto bounds how much of the client's CRYPTO stream is kept: enough
// for a ClientHello with a post-quantum key share, no more.
const MaxCrypto = 8192

// CryptoStream reassembles the start of the Initial CRYPTO stream from
// frames that may arrive out of order and across packets.
type CryptoStream struct {
	buf    [MaxCrypto]byte
	filled [MaxCrypto / 64]uint64 // one bit per byte of buf
}

// Reset empties the stream for reuse.
func (s *CryptoStream) Reset() {
	s.filled = [MaxCrypto / 64]uint64{}
}

// Add records a CRYPTO frame; bytes beyond MaxCrypto are dropped.
func (s *CryptoStream) Add(offset uint64, data []byte) {
	if offset >= MaxCrypto {
		return
	}
	end := offset + uint64(len(data))
	if end > MaxCrypto {
		end = MaxCrypto
	}
	copy(s.buf[offset:end], data)
	for i := offset; i < end; i++ {
		s.filled[i/64] |= 1 << (i % 64)
	}
}

// Prefix returns the contiguous bytes received from offset 0.
func (s *CryptoStream) Prefix() []byte {
	n := 0
	for _, w := range s.filled {
		if w == ^uint64(0) {
			n += 64
			continue
		}
		for w&1 == 1 {
			n++
			w >>= 1
		}
		break
	}
	return s.buf[:n]
}

// HandshakeComplete reports whether the prefix holds one whole handshake
// message (type, 24-bit length, body).
func HandshakeComplete(p []byte) bool {
	if len(p) < 4 {
		return false
	}
	n := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
	return len(p) >= 4+n
}

// GoogleCHLO looks for the cleartext CHLO handshake message of Google QUIC
// (versions Q043 to Q046 send it unencrypted in the first packet) and
// returns the value of the SNI tag, or nil.
func GoogleCHLO(payload []byte) (sni []byte, ok bool) {
	// The message sits after a version-dependent header and stream frame
	// header, well within the first 64 bytes.
	limit := len(payload)
	if limit > 96 {
		limit = 96
	}
	i := indexCHLO(payload[:limit])
	if i < 0 {
		return nil, false
	}
	m := payload[i:]
	if len(m) < 8 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(m[4:6]))
	if n == 0 || n > 64 || len(m) < 8+8*n {
		return nil, false
	}
	values := m[8+8*n:]
	prevEnd := uint32(0)
	for k := 0; k < n; k++ {
		e := m[8+8*k:]
		end := binary.LittleEndian.Uint32(e[4:8])
		if end < prevEnd || int(end) > len(values) {
			return nil, true // message continues in later packets
		}
		if string(e[:4]) == "SNI\x00" {
			return values[prevEnd:end], true
		}
		prevEnd = end
	}
	return nil, true
}

func indexCHLO(b []byte) int {
	for i := 0; i+4 <= len(b); i++ {
		if b[i] == 'C' && b[i+1] == 'H' && b[i+2] == 'L' && b[i+3] == 'O' {
			return i
		}
	}
	return -1
}
