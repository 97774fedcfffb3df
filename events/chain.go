package events

import (
	"crypto/sha256"
	"encoding/hex"
)

// The hash chain. Every incident event carries, in its prevhash attribute,
// the hash of the incident's previous event; the first carries the
// incident's genesis hash. Changing, inserting, removing or reordering an
// event therefore breaks the chain at that point, and an incident's last
// hash (its head) stands for its whole history.
//
//   - Canonical bytes of an event: Envelope.Marshal of the decoded
//     envelope, i.e. structured-mode JSON with the attributes in this order
//     and no white space: specversion, id, source, type, subject, time
//     (RFC 3339 with nanoseconds, trailing zeros dropped), datacontenttype,
//     dataversion, then actor, actorname, via, causationid, correlationid,
//     prevhash when not empty, then data (compact JSON, as stored), with
//     Go's encoding/json string escaping. Attributes Hikeshi does not know
//     are not covered.
//   - Hash(event) = lowercase hex of SHA-256 over its canonical bytes,
//     prevhash included, so each hash covers everything before it.
//   - Genesis(incident) = lowercase hex of SHA-256 over "hikeshi:" followed
//     by the incident id.
//
// Events written before the chain existed have no prevhash; they are
// chained all the same (their hashes are computed like any other), and the
// first chained event after them carries the hash of the last of them.

// The stream of signed checkpoints of the incident stream's chains (see
// docs/events.md, Checkpoints and bundles).
const (
	CheckpointStream  = "CHECKPOINTS"
	CheckpointSubject = "checkpoints"
)

// Genesis is the hash the first event of an incident chains to.
func Genesis(incidentID string) string {
	sum := sha256.Sum256([]byte("hikeshi:" + incidentID))
	return hex.EncodeToString(sum[:])
}

// Canonical is the byte string an event's hash is computed over.
func (e Envelope) Canonical() ([]byte, error) { return e.Marshal() }

// Hash is the hash of the event, the next event's prevhash.
func (e Envelope) Hash() (string, error) {
	b, err := e.Canonical()
	if err != nil {
		return "", err
	}
	return HashBytes(b), nil
}

// HashBytes is the chain hash of canonical bytes already at hand.
func HashBytes(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}
