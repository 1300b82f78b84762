package password

// argon2id (RFC 9106) over memory this package owns and reuses.
//
// golang.org/x/crypto/argon2 allocates its 19 MiB of blocks on every call.
// Under the daemon's GOGC and soft memory limit that memory is collected
// and handed back to the kernel between checks, so every check faulted
// its 4,864 pages in again and zeroed them, and set off a collection of
// the whole heap: on the shared 2-core machine that was 47-78 ms of a
// TTLS-PAP first login, more than the hashing. Here the blocks of the
// current cost come from a sync.Pool: a burst of logins reuses the same
// (already resident) memory, and an idle daemon's collector drops it
// after two cycles, so the idle budget is not charged for it. Callers
// already bound how many checks run at once (radius's and web's
// semaphores), which bounds how many blocks exist.
//
// The computation follows x/crypto's argon2.go (BSD-3-Clause, Copyright
// 2017 The Go Authors) with two differences: lanes of one slice run one
// after the other on the calling goroutine (RFC 9106 3.4: the segments of
// a slice reference nothing of each other, so the result is the same),
// and the first pass writes its blocks instead of XORing them into
// memory the allocator zeroed, since reused memory is not zero. Tests
// check it against x/crypto's IDKey for several parameter sets.

import (
	"encoding/binary"
	"hash"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blake2b"
)

const (
	blockWords = 128 // a block is 1 KiB
	syncPoints = 4
	modeID     = 2 // argon2id's type in the parameter block
)

type block [blockWords]uint64

// arenas holds blocks for the current cost (memoryKiB blocks), as
// *[]block; other sizes (older hashes) are allocated per call.
var arenas = sync.Pool{}

func getBlocks(n uint32) (b []block, put func()) {
	if n != memoryKiB {
		return make([]block, n), func() {}
	}
	if p, ok := arenas.Get().(*[]block); ok {
		return *p, func() { arenas.Put(p) }
	}
	s := make([]block, n)
	return s, func() { arenas.Put(&s) }
}

// idKey is argon2.IDKey(pw, salt, p.time, p.memory, p.threads, keyLen).
func idKey(pw, salt []byte, p params, keyLen uint32) []byte {
	threads := uint32(p.threads)
	h0 := initHash(pw, salt, p, keyLen)
	memory := p.memory / (syncPoints * threads) * (syncPoints * threads)
	if memory < 2*syncPoints*threads {
		memory = 2 * syncPoints * threads
	}
	B, put := getBlocks(memory)
	defer put()
	lanes := memory / threads
	var block0 [1024]byte
	for lane := range threads {
		j := lane * lanes
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)
		for k := range uint32(2) {
			binary.LittleEndian.PutUint32(h0[blake2b.Size:], k)
			blake2bHash(block0[:], h0[:])
			for i := range B[j+k] {
				B[j+k][i] = binary.LittleEndian.Uint64(block0[i*8:])
			}
		}
	}
	for n := range p.time {
		for slice := range uint32(syncPoints) {
			for lane := range threads {
				segment(B, n, slice, lane, memory, threads, p.time)
			}
		}
	}
	last := B[memory-1]
	for lane := range threads - 1 {
		for i, v := range B[lane*lanes+lanes-1] {
			last[i] ^= v
		}
	}
	for i, v := range last {
		binary.LittleEndian.PutUint64(block0[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block0[:])
	clear(block0[:])
	return key
}

func initHash(pw, salt []byte, p params, keyLen uint32) [blake2b.Size + 8]byte {
	var h0 [blake2b.Size + 8]byte
	b2, _ := blake2b.New512(nil)
	var u [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(u[:], v)
		b2.Write(u[:])
	}
	put(uint32(p.threads))
	put(keyLen)
	put(p.memory)
	put(p.time)
	put(argon2.Version)
	put(modeID)
	put(uint32(len(pw)))
	b2.Write(pw)
	put(uint32(len(salt)))
	b2.Write(salt)
	put(0) // no secret
	put(0) // no associated data
	b2.Sum(h0[:0])
	return h0
}

// segment computes one lane's segment of one slice of pass n.
func segment(B []block, n, slice, lane, memory, threads, time uint32) {
	lanes := memory / threads
	segments := lanes / syncPoints
	var addresses, in, zero block
	// argon2id: data-independent addressing in the first half of the
	// first pass, data-dependent after.
	independent := n == 0 && slice < syncPoints/2
	if independent {
		in[0], in[1], in[2], in[3], in[4], in[5] = uint64(n), uint64(lane), uint64(slice), uint64(memory), uint64(time), modeID
	}
	index := uint32(0)
	if n == 0 && slice == 0 {
		index = 2 // the first two blocks come from H0
		if independent {
			in[6]++
			processBlock(&addresses, &in, &zero, false)
			processBlock(&addresses, &addresses, &zero, false)
		}
	}
	offset := lane*lanes + slice*segments + index
	for index < segments {
		prev := offset - 1
		if index == 0 && slice == 0 {
			prev += lanes // the lane's last block
		}
		var random uint64
		if independent {
			if index%blockWords == 0 {
				in[6]++
				processBlock(&addresses, &in, &zero, false)
				processBlock(&addresses, &addresses, &zero, false)
			}
			random = addresses[index%blockWords]
		} else {
			random = B[prev][0]
		}
		ref := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
		processBlock(&B[offset], &B[prev], &B[ref], n > 0)
		index, offset = index+1, offset+1
	}
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * uint64(m)) >> 32
	return refLane*lanes + uint32((uint64(s)+uint64(m)-(p+1))%uint64(lanes))
}

// processBlock is the compression function G: out = G(in1, in2), or
// out ^= G(in1, in2) with xor (passes after the first, RFC 9106 3.2).
func processBlock(out, in1, in2 *block, xor bool) {
	var t block
	for i := range t {
		t[i] = in1[i] ^ in2[i]
	}
	for i := 0; i < blockWords; i += 16 {
		blamka(&t[i+0], &t[i+1], &t[i+2], &t[i+3], &t[i+4], &t[i+5], &t[i+6], &t[i+7],
			&t[i+8], &t[i+9], &t[i+10], &t[i+11], &t[i+12], &t[i+13], &t[i+14], &t[i+15])
	}
	for i := 0; i < blockWords/8; i += 2 {
		blamka(&t[i], &t[i+1], &t[16+i], &t[16+i+1], &t[32+i], &t[32+i+1], &t[48+i], &t[48+i+1],
			&t[64+i], &t[64+i+1], &t[80+i], &t[80+i+1], &t[96+i], &t[96+i+1], &t[112+i], &t[112+i+1])
	}
	if xor {
		for i := range t {
			out[i] ^= in1[i] ^ in2[i] ^ t[i]
		}
		return
	}
	for i := range t {
		out[i] = in1[i] ^ in2[i] ^ t[i]
	}
}

// blamka is the permutation P's round on 16 words (RFC 9106 3.6),
// unrolled as x/crypto's generic code has it.
func blamka(t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15 *uint64) {
	v00, v01, v02, v03 := *t00, *t01, *t02, *t03
	v04, v05, v06, v07 := *t04, *t05, *t06, *t07
	v08, v09, v10, v11 := *t08, *t09, *t10, *t11
	v12, v13, v14, v15 := *t12, *t13, *t14, *t15

	v00 += v04 + 2*uint64(uint32(v00))*uint64(uint32(v04))
	v12 ^= v00
	v12 = v12>>32 | v12<<32
	v08 += v12 + 2*uint64(uint32(v08))*uint64(uint32(v12))
	v04 ^= v08
	v04 = v04>>24 | v04<<40

	v00 += v04 + 2*uint64(uint32(v00))*uint64(uint32(v04))
	v12 ^= v00
	v12 = v12>>16 | v12<<48
	v08 += v12 + 2*uint64(uint32(v08))*uint64(uint32(v12))
	v04 ^= v08
	v04 = v04>>63 | v04<<1

	v01 += v05 + 2*uint64(uint32(v01))*uint64(uint32(v05))
	v13 ^= v01
	v13 = v13>>32 | v13<<32
	v09 += v13 + 2*uint64(uint32(v09))*uint64(uint32(v13))
	v05 ^= v09
	v05 = v05>>24 | v05<<40

	v01 += v05 + 2*uint64(uint32(v01))*uint64(uint32(v05))
	v13 ^= v01
	v13 = v13>>16 | v13<<48
	v09 += v13 + 2*uint64(uint32(v09))*uint64(uint32(v13))
	v05 ^= v09
	v05 = v05>>63 | v05<<1

	v02 += v06 + 2*uint64(uint32(v02))*uint64(uint32(v06))
	v14 ^= v02
	v14 = v14>>32 | v14<<32
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v06 ^= v10
	v06 = v06>>24 | v06<<40

	v02 += v06 + 2*uint64(uint32(v02))*uint64(uint32(v06))
	v14 ^= v02
	v14 = v14>>16 | v14<<48
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v06 ^= v10
	v06 = v06>>63 | v06<<1

	v03 += v07 + 2*uint64(uint32(v03))*uint64(uint32(v07))
	v15 ^= v03
	v15 = v15>>32 | v15<<32
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v07 ^= v11
	v07 = v07>>24 | v07<<40

	v03 += v07 + 2*uint64(uint32(v03))*uint64(uint32(v07))
	v15 ^= v03
	v15 = v15>>16 | v15<<48
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v07 ^= v11
	v07 = v07>>63 | v07<<1

	v00 += v05 + 2*uint64(uint32(v00))*uint64(uint32(v05))
	v15 ^= v00
	v15 = v15>>32 | v15<<32
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v05 ^= v10
	v05 = v05>>24 | v05<<40

	v00 += v05 + 2*uint64(uint32(v00))*uint64(uint32(v05))
	v15 ^= v00
	v15 = v15>>16 | v15<<48
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v05 ^= v10
	v05 = v05>>63 | v05<<1

	v01 += v06 + 2*uint64(uint32(v01))*uint64(uint32(v06))
	v12 ^= v01
	v12 = v12>>32 | v12<<32
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v06 ^= v11
	v06 = v06>>24 | v06<<40

	v01 += v06 + 2*uint64(uint32(v01))*uint64(uint32(v06))
	v12 ^= v01
	v12 = v12>>16 | v12<<48
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v06 ^= v11
	v06 = v06>>63 | v06<<1

	v02 += v07 + 2*uint64(uint32(v02))*uint64(uint32(v07))
	v13 ^= v02
	v13 = v13>>32 | v13<<32
	v08 += v13 + 2*uint64(uint32(v08))*uint64(uint32(v13))
	v07 ^= v08
	v07 = v07>>24 | v07<<40

	v02 += v07 + 2*uint64(uint32(v02))*uint64(uint32(v07))
	v13 ^= v02
	v13 = v13>>16 | v13<<48
	v08 += v13 + 2*uint64(uint32(v08))*uint64(uint32(v13))
	v07 ^= v08
	v07 = v07>>63 | v07<<1

	v03 += v04 + 2*uint64(uint32(v03))*uint64(uint32(v04))
	v14 ^= v03
	v14 = v14>>32 | v14<<32
	v09 += v14 + 2*uint64(uint32(v09))*uint64(uint32(v14))
	v04 ^= v09
	v04 = v04>>24 | v04<<40

	v03 += v04 + 2*uint64(uint32(v03))*uint64(uint32(v04))
	v14 ^= v03
	v14 = v14>>16 | v14<<48
	v09 += v14 + 2*uint64(uint32(v09))*uint64(uint32(v14))
	v04 ^= v09
	v04 = v04>>63 | v04<<1

	*t00, *t01, *t02, *t03 = v00, v01, v02, v03
	*t04, *t05, *t06, *t07 = v04, v05, v06, v07
	*t08, *t09, *t10, *t11 = v08, v09, v10, v11
	*t12, *t13, *t14, *t15 = v12, v13, v14, v15
}

// blake2bHash is argon2's variable-length hash H' (RFC 9106 3.3).
func blake2bHash(out []byte, in []byte) {
	var b2 hash.Hash
	if n := len(out); n < blake2b.Size {
		b2, _ = blake2b.New(n, nil)
	} else {
		b2, _ = blake2b.New512(nil)
	}
	var buffer [blake2b.Size]byte
	binary.LittleEndian.PutUint32(buffer[:4], uint32(len(out)))
	b2.Write(buffer[:4])
	b2.Write(in)
	if len(out) <= blake2b.Size {
		b2.Sum(out[:0])
		return
	}
	outLen := len(out)
	b2.Sum(buffer[:0])
	b2.Reset()
	copy(out, buffer[:32])
	out = out[32:]
	for len(out) > blake2b.Size {
		b2.Write(buffer[:])
		b2.Sum(buffer[:0])
		copy(out, buffer[:32])
		out = out[32:]
		b2.Reset()
	}
	if outLen%blake2b.Size > 0 {
		r := ((outLen + 31) / 32) - 2
		b2, _ = blake2b.New(outLen-32*r, nil)
	}
	b2.Write(buffer[:])
	b2.Sum(out[:0])
}
