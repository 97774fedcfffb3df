// Package checkpoints seals the incident record: a hub signs, every so
// many events or minutes, the hash chain heads of every incident into the
// CHECKPOINTS stream, and a verifier walks the record (the stream, one
// incident, or an exported bundle) and names every break in it.
package checkpoints

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Head is an incident's chain head at a checkpoint: the hash of its last
// event, that event's stream sequence and how many events it has.
type Head struct {
	Incident string `json:"incident"`
	Seq      uint64 `json:"seq"`
	Hash     string `json:"hash"`
	Events   int    `json:"events"`
}

// Checkpoint vouches for the incident stream up to stream sequence Seq.
// Root is the Merkle root over every incident's head; Heads lists the
// heads that changed since the previous checkpoint, whose hash is Prev, so
// one incident's checkpoints can be checked without the others'.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Incidents int       `json:"incidents"`
	Root      string    `json:"root"`
	Heads     []Head    `json:"heads"`
	Prev      string    `json:"prev,omitempty"`
	Key       string    `json:"key"` // the signer's public key (PublicKeyString)
	Sig       string    `json:"sig,omitempty"`
}

// Signed is the byte string the signature covers: the checkpoint's JSON
// without sig.
func (c Checkpoint) Signed() []byte {
	c.Sig = ""
	b, _ := json.Marshal(c) // plain types: never fails
	return b
}

// Hash identifies a checkpoint: the next one's Prev.
func (c Checkpoint) Hash() string {
	sum := sha256.Sum256(c.Signed())
	return hex.EncodeToString(sum[:])
}

// Sign fills Key and Sig.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.Key = PublicKeyString(key.Public().(ed25519.PublicKey))
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.Signed()))
}

// CheckSignature reports why the checkpoint is not signed by pub, nil when
// it is.
func (c Checkpoint) CheckSignature(pub ed25519.PublicKey) error {
	if c.Key != PublicKeyString(pub) {
		return fmt.Errorf("signed by key %s, not the trusted key %s", c.Key, PublicKeyString(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(pub, c.Signed(), sig) {
		return errors.New("signature does not match its contents")
	}
	return nil
}

// Root is the Merkle root over incident heads, sorted by incident id:
// leaf = SHA-256(0x00 || incident || 0x00 || hash), node = SHA-256(0x01 ||
// left || right), an odd node moving up unchanged; no heads: SHA-256 of
// nothing.
func Root(heads map[string]string) string {
	ids := make([]string, 0, len(heads))
	for id := range heads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	level := make([][]byte, len(ids))
	for i, id := range ids {
		h := sha256.New()
		h.Write([]byte{0})
		h.Write([]byte(id))
		h.Write([]byte{0})
		h.Write([]byte(heads[id]))
		level[i] = h.Sum(nil)
	}
	if len(level) == 0 {
		sum := sha256.Sum256(nil)
		return hex.EncodeToString(sum[:])
	}
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			h := sha256.New()
			h.Write([]byte{1})
			h.Write(level[i])
			h.Write(level[i+1])
			next = append(next, h.Sum(nil))
		}
		level = next
	}
	return hex.EncodeToString(level[0])
}

// PublicKeyString is how public keys are written and given: "ed25519:"
// and the base64 of the key's 32 bytes.
func PublicKeyString(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a PublicKeyString.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), "ed25519:")
	b, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: want ed25519: followed by the base64 of 32 bytes, as 'hikeshi keys show' prints it", s)
	}
	return ed25519.PublicKey(b), nil
}
