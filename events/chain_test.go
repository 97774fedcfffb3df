package events_test

import (
	"os"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Vectors computed outside Go (printf … | sha256sum), so that another
// implementation can check itself against them.
const (
	genesis42 = "71a66651565c084f082153b6391a99c854f7800ee555f84a614d4b196dba5e3c"
	// hash of testdata/io.hikeshi.incident.declared.v1.json
	declaredHash = "60dd84c5b213a9befafd8c3c4aa0da3702ef0d70aac36e4f4d1b664ab288de70"
	chainedNote  = `{"specversion":"1.0","id":"01959426-8dbe-7de4-88af-f8b4c17124bf","source":"urn:hikeshi:hub","type":"io.hikeshi.incident.note_added","subject":"019593fa-5d95-7d57-b4cb-bc6b32ea3529","time":"2025-03-14T10:15:09.502Z","datacontenttype":"application/json","dataversion":1,"actor":"erin","prevhash":"60dd84c5b213a9befafd8c3c4aa0da3702ef0d70aac36e4f4d1b664ab288de70","data":{"text":"Support has 230 tickets tagged checkout-502; macro with the status page link sent."}}`
	chainedHash  = "dd81a135ea37cad658608e7cab580c24c83105fae3e643bdec1edec8f20634ef"
)

func goldenEvent(t *testing.T, name string) events.Envelope {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestChainGoldenVectors(t *testing.T) {
	if g := events.Genesis(inc42); g != genesis42 {
		t.Errorf("Genesis = %s, want %s", g, genesis42)
	}
	if h, _ := goldenEvent(t, "io.hikeshi.incident.declared.v1.json").Hash(); h != declaredHash {
		t.Errorf("hash of the declared golden = %s, want %s", h, declaredHash)
	}
	note := goldenEvent(t, "io.hikeshi.incident.note_added.v1.chained.json")
	if c, _ := note.Canonical(); string(c) != chainedNote {
		t.Errorf("canonical bytes =\n%s\nwant\n%s", c, chainedNote)
	}
	if h, _ := note.Hash(); h != chainedHash {
		t.Errorf("hash = %s, want %s", h, chainedHash)
	}
	if note.PrevHash != declaredHash {
		t.Errorf("prevhash = %s, want the declared event's hash", note.PrevHash)
	}
}

// The hash a writer computes before publishing equals the one a reader
// computes from the stored bytes, and covers every attribute.
func TestHashSurvivesTheWireAndCoversEveryAttribute(t *testing.T) {
	env, err := events.New(inc42, &events.NoteAdded{Text: "a <b> & \"c\" \u2028"}, events.Meta{
		Actor: "person:erin@example.com", ActorName: "Erin", Via: "slack:U1", CausationID: "c", CorrelationID: "k",
		Time: time.Date(2026, 11, 21, 14, 5, 0, 120_000_000, time.FixedZone("x", 3600)),
	})
	if err != nil {
		t.Fatal(err)
	}
	env.PrevHash = events.Genesis(inc42)
	want, _ := env.Hash()
	b, _ := env.Marshal()
	back, err := events.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := back.Hash(); got != want {
		t.Fatalf("hash after a round trip = %s, want %s", got, want)
	}
	for name, change := range map[string]func(*events.Envelope){
		"id": func(e *events.Envelope) { e.ID += "x" }, "source": func(e *events.Envelope) { e.Source += "x" },
		"type": func(e *events.Envelope) { e.Type += "x" }, "subject": func(e *events.Envelope) { e.Subject += "x" },
		"time": func(e *events.Envelope) { e.Time = e.Time.Add(time.Nanosecond) }, "actor": func(e *events.Envelope) { e.Actor += "x" },
		"actorname": func(e *events.Envelope) { e.ActorName += "x" }, "via": func(e *events.Envelope) { e.Via += "x" },
		"causationid": func(e *events.Envelope) { e.CausationID += "x" }, "correlationid": func(e *events.Envelope) { e.CorrelationID += "x" },
		"dataversion": func(e *events.Envelope) { e.DataVersion++ }, "prevhash": func(e *events.Envelope) { e.PrevHash = "00" },
		"data": func(e *events.Envelope) { e.Data = []byte(`{"text":"b"}`) },
	} {
		c := back
		change(&c)
		if got, _ := c.Hash(); got == want {
			t.Errorf("changing %s leaves the hash unchanged", name)
		}
	}
}
