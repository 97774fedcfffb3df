package checkpoints

import (
	"crypto/ed25519"
	"fmt"
	"hash/fnv"

	"github.com/hikeshi/hikeshi/events"
)

// Kinds of break.
const (
	Changed       = "changed"
	Inserted      = "inserted"
	Removed       = "removed"
	Reordered     = "reordered"
	Broken        = "broken"     // the chain breaks: an event changed or events removed before this point
	BadCheckpoint = "checkpoint" // a checkpoint's signature or contents
)

// Break is one place where the record is not what was written.
type Break struct {
	Kind     string `json:"kind"`
	Seq      uint64 `json:"seq"` // stream sequence of the event, or the checkpoint's covered sequence
	Incident string `json:"incident,omitempty"`
	EventID  string `json:"event_id,omitempty"`
	Detail   string `json:"detail"`
}

func (b Break) String() string {
	what := fmt.Sprintf("seq %d", b.Seq)
	if b.Kind == BadCheckpoint {
		what = fmt.Sprintf("checkpoint at seq %d", b.Seq)
	}
	if b.Incident != "" {
		what += " incident " + b.Incident
	}
	if b.EventID != "" {
		what += " event " + b.EventID
	}
	return fmt.Sprintf("%s: %s: %s", b.Kind, what, b.Detail)
}

// Report is what a verification found.
type Report struct {
	Events      int     `json:"events"`
	Incidents   int     `json:"incidents"`
	Unchained   int     `json:"unchained"` // written before chaining, chained by this verification
	Checkpoints int     `json:"checkpoints"`
	LastSigned  uint64  `json:"last_signed_seq"` // the highest sequence a valid checkpoint covers
	LastSeq     uint64  `json:"last_seq"`        // the highest sequence of an event verified
	Breaks      []Break `json:"breaks"`
}

// OK reports whether the record is intact.
func (r Report) OK() bool { return len(r.Breaks) == 0 }

// chain is one incident's chain as the verifier folds it.
type chain struct {
	head    string // hash of the last event, "" before the first
	headSeq uint64
	events  int
	chained bool // an event with prevhash was seen
	// seen and ids map every event's hash and id (as a short key) to its
	// seq, to name what an event chains to: about 60 bytes an event.
	seen   map[uint64]uint64
	ids    map[uint64]uint64
	wanted map[string]int  // unknown prevhash -> index of the break it caused
	broken []int           // breaks of kind Broken a checkpoint may tell apart
	moved  map[uint64]bool // seqs of events a reordering moved
}

func newChain() *chain {
	return &chain{seen: map[uint64]uint64{}, ids: map[uint64]uint64{}, wanted: map[string]int{}, moved: map[uint64]bool{}}
}

// Verifier folds events, in stream order, and checkpoints into a report.
// Feed each checkpoint after every event at or below its sequence and
// before any event after it.
type Verifier struct {
	key     ed25519.PublicKey // nil: signatures are not checked (the writer's own fold)
	whole   bool              // every incident is fed: roots can be checked
	chains  map[string]*chain
	lastCP  string // hash of the last checkpoint
	cpSeen  bool
	changed map[string]bool // incidents changed since the last checkpoint
	report  Report
}

// NewVerifier checks signatures against key. whole says the verifier is fed
// the entire stream, so that checkpoint roots can be recomputed.
func NewVerifier(key ed25519.PublicKey, whole bool) *Verifier {
	return &Verifier{key: key, whole: whole, chains: map[string]*chain{}, changed: map[string]bool{}}
}

func (v *Verifier) fail(kind string, s events.Stored, format string, a ...any) {
	v.report.Breaks = append(v.report.Breaks, Break{Kind: kind, Seq: s.Seq, Incident: s.Envelope.Subject, EventID: s.ID, Detail: fmt.Sprintf(format, a...)})
}

// Event folds the next stored incident event.
func (v *Verifier) Event(s events.Stored) {
	env := s.Envelope
	id := env.Subject
	if sid, ok := events.IncidentID(s.Subject); s.Subject != "" && (!ok || sid != id) {
		v.fail(Inserted, s, "stored under subject %s, which is not its incident's", s.Subject)
	}
	c := v.chains[id]
	if c == nil {
		c = newChain()
		v.chains[id] = c
		v.report.Incidents++
	}
	hash, err := env.Hash()
	if err != nil {
		v.fail(Changed, s, "cannot be hashed: %v", err)
		return
	}
	v.report.Events++
	v.report.LastSeq = max(v.report.LastSeq, s.Seq)
	expected := c.head
	if c.events == 0 {
		expected = events.Genesis(id)
	}
	var brk *Break
	flag := func(kind, format string, a ...any) {
		brk = &Break{Kind: kind, Seq: s.Seq, Incident: id, EventID: env.ID, Detail: fmt.Sprintf(format, a...)}
	}
	switch first, dup := c.ids[short(env.ID)]; {
	case dup && c.seen[short(hash)] != 0:
		flag(Inserted, "a copy of seq %d, published again", first)
	case dup:
		flag(Changed, "a second, different event with the id of seq %d (an altered copy)", first)
	case env.PrevHash == "" && !c.chained:
		v.report.Unchained++
	case env.PrevHash == "":
		flag(Inserted, "has no prevhash, after chained events: written outside the hub")
	case env.PrevHash == expected:
	case c.moved[c.seen[short(env.PrevHash)]]:
		// follows an event moved by a reordering, reported there
	case c.seen[short(env.PrevHash)] != 0:
		flag(Inserted, "chains to seq %d, not to the event before it (seq %d): it, or the events between, were inserted", c.seen[short(env.PrevHash)], c.headSeq)
	case env.PrevHash == events.Genesis(id):
		flag(Inserted, "chains to the incident's start although %d events come before it", c.events)
	default:
		flag(Broken, "its prevhash is not the hash of any event before it: the event before it (seq %d) was changed, events before it were removed, or this one was forged", c.headSeq)
	}
	if idx, ok := c.wanted[hash]; ok {
		b := &v.report.Breaks[idx]
		b.Kind, b.Detail = Reordered, fmt.Sprintf("chains to seq %d, which comes after it: events were reordered", s.Seq)
		delete(c.wanted, hash)
		c.moved[b.Seq], c.moved[s.Seq] = true, true
		if brk != nil && brk.Kind == Inserted {
			brk = nil // moved, not inserted: the break above names it
		}
	}
	if brk != nil {
		v.report.Breaks = append(v.report.Breaks, *brk)
		if brk.Kind == Broken {
			c.wanted[env.PrevHash] = len(v.report.Breaks) - 1
			c.broken = append(c.broken, len(v.report.Breaks)-1)
		}
	}
	c.chained = c.chained || env.PrevHash != ""
	c.head, c.headSeq = hash, s.Seq
	c.events++
	c.seen[short(hash)] = s.Seq
	if _, dup := c.ids[short(env.ID)]; !dup {
		c.ids[short(env.ID)] = s.Seq
	}
	v.changed[id] = true
}

// Heads are the incidents' current heads.
func (v *Verifier) Heads() map[string]string {
	out := make(map[string]string, len(v.chains))
	for id, c := range v.chains {
		out[id] = c.head
	}
	return out
}

// Checkpoint checks the next checkpoint against the events folded so far.
func (v *Verifier) Checkpoint(cp Checkpoint) {
	v.report.Checkpoints++
	bad := func(format string, a ...any) {
		v.report.Breaks = append(v.report.Breaks, Break{Kind: BadCheckpoint, Seq: cp.Seq, Detail: fmt.Sprintf(format, a...)})
	}
	ok := true
	if err := cp.CheckSignature(v.key); err != nil {
		bad("%v", err)
		ok = false
	}
	if v.whole && v.cpSeen && cp.Prev != v.lastCP {
		bad("does not follow the checkpoint before it: a checkpoint was removed or inserted")
		ok = false
	}
	for _, h := range cp.Heads {
		c := v.chains[h.Incident]
		if c == nil {
			if v.whole {
				bad("signs incident %s, which has no events up to seq %d: its events were removed", h.Incident, cp.Seq)
				ok = false
			}
			continue
		}
		c.settle(v.report.Breaks, h)
		switch {
		case c.events < h.Events:
			bad("signs %d events of incident %s up to seq %d; the record has %d: %d removed", h.Events, h.Incident, cp.Seq, c.events, h.Events-c.events)
			ok = false
		case c.events > h.Events:
			bad("signs %d events of incident %s up to seq %d; the record has %d: %d inserted", h.Events, h.Incident, cp.Seq, c.events, c.events-h.Events)
			ok = false
		case c.head != h.Hash:
			bad("incident %s's head up to seq %d is not the one signed: an event was changed or reordered", h.Incident, cp.Seq)
			ok = false
		}
	}
	if v.whole {
		if cp.Incidents != len(v.chains) || cp.Root != Root(v.Heads()) {
			bad("the Merkle root over every incident's head does not match the record up to seq %d", cp.Seq)
			ok = false
		}
		for id := range v.changed {
			if !signs(cp, id) {
				bad("incident %s changed before seq %d but the checkpoint does not sign it: events were inserted", id, cp.Seq)
				ok = false
			}
		}
	}
	clear(v.changed)
	v.lastCP, v.cpSeen = cp.Hash(), true
	if ok {
		v.report.LastSigned = cp.Seq
	}
}

func signs(cp Checkpoint, id string) bool {
	for _, h := range cp.Heads {
		if h.Incident == id {
			return true
		}
	}
	return false
}

// Finish returns the report.
func (v *Verifier) Finish() Report { return v.report }

// headsSince lists the heads changed since the last checkpoint, sorted by
// incident, for the next one.
func (v *Verifier) headsSince() []Head {
	out := make([]Head, 0, len(v.changed))
	for id := range v.changed {
		c := v.chains[id]
		out = append(out, Head{Incident: id, Seq: c.headSeq, Hash: c.head, Events: c.events})
	}
	sortHeads(out)
	return out
}

// settle names the chain's unexplained breaks once a checkpoint says how
// many events the incident had: fewer now, events were removed; as many,
// an event was changed.
func (c *chain) settle(breaks []Break, h Head) {
	for _, i := range c.broken {
		switch {
		case breaks[i].Kind != Broken:
		case c.events < h.Events:
			breaks[i].Kind = Removed
			breaks[i].Detail += fmt.Sprintf("; a checkpoint signs %d events of the incident, the record has %d: events were removed", h.Events, c.events)
		case c.events == h.Events:
			breaks[i].Kind = Changed
			breaks[i].Detail += "; a checkpoint signs as many events as the record has: an event was changed (or this one forged before the checkpoint)"
		}
	}
	c.broken = nil
}

// short is the key of a hash or id in a chain's maps. A collision (odds
// below 1 in 10^7 among a million events of one incident) could misname a
// break or report a false one, never hide one: the chain itself compares
// whole hashes.
func short(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
