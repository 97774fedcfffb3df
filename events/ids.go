package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// NewID returns a random UUIDv7: time-ordered, so ids sort by creation.
// Within one process the ids are strictly increasing, even when several are
// made in the same millisecond or the clock steps back: the 12 bits after
// the version hold a counter (RFC 9562, section 6.2, method 1).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	now := uint64(time.Now().UnixMilli())
	idMu.Lock()
	if now > idLastMs {
		idLastMs = now
		// Start at a random point of the lower half, leaving room to count.
		idSeq = binary.BigEndian.Uint16(b[6:8]) & 0x07ff
	} else {
		idSeq++
		if idSeq > 0x0fff { // counter exhausted: borrow the next millisecond
			idLastMs++
			idSeq = 0
		}
	}
	ms, seq := idLastMs, idSeq
	idMu.Unlock()
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	b[6] = 0x70 | byte(seq>>8)
	b[7] = byte(seq)
	b[8] = b[8]&0x3f | 0x80
	return format(b)
}

var (
	idMu     sync.Mutex
	idLastMs uint64 // timestamp of the last id, in Unix milliseconds
	idSeq    uint16 // counter within idLastMs, 12 bits
)

// DeriveID returns a UUIDv8 computed from parts, so that a retried request
// or a redelivered cause yields the same event id (and NATS Msg-Id) again.
func DeriveID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return format(b)
}

func format(b [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// ValidID reports whether s can be an incident id: it becomes a NATS subject
// token, so it must be non-empty and free of dots, wildcards and spaces.
func ValidID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// Derived reports whether id has the form DeriveID gives (UUIDv8): an id a
// retry can produce again, unlike NewID's random ones.
func Derived(id string) bool {
	return len(id) == 36 && id[14] == '8' && id[8] == '-'
}
