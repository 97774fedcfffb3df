package public_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/module"
	"github.com/hikeshi/hikeshi/services/public"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const secretTitle = "Stolen signing key used on the release pipeline"

// TestOutsideConsumerReadsOnlyTheRedactedStream: a NATS user with
// --nats-access public reads INCIDENTS_PUBLIC, where a confidential
// incident appears under its codename with its free text withheld, and
// cannot read INCIDENTS; an open incident is republished as it is.
func TestOutsideConsumerReadsOnlyTheRedactedStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := ln.Addr().String()
	ln.Close()
	f, err := config.Parse("hikeshi.yaml", []byte("public: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", File: f, NATSListen: natsAddr, Modules: []module.Module{public.Module},
		NATSAuth: natsjs.Auth{User: "dashboard", Password: "s3cret-dash", Public: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	api := "http://" + h.Addr()

	secret := declare(t, api, map[string]any{"title": secretTitle, "service": "release", "severity": "SEV1",
		"summary": "the key signed two builds", "confidential": true})
	post(t, api+"/api/v1/incidents/"+secret.ID+"/notes", map[string]any{"text": "key revoked at the HSM"})
	open := declare(t, api, map[string]any{"title": "Docs site slow", "service": "docs", "severity": "SEV4"})

	nc, err := nats.Connect("nats://"+natsAddr, nats.UserInfo("dashboard", "s3cret-dash"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), events.IncidentStream); err == nil {
		t.Fatal("the public reader reads INCIDENTS")
	}
	got := map[string]events.Envelope{}
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		cons, err := js.OrderedConsumer(context.Background(), events.PublicStream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.FetchNoWait(10)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			e, err := events.Unmarshal(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got[e.Subject+" "+e.Type] = e
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range got {
		if bytes.Contains(e.Data, []byte(secretTitle)) || bytes.Contains(e.Data, []byte("signed two builds")) || bytes.Contains(e.Data, []byte("HSM")) {
			t.Fatalf("the public stream leaks: %s %s", e.Type, e.Data)
		}
	}
	var d events.Declared
	decl, ok := got[secret.ID+" "+events.TypeDeclared]
	if !ok || json.Unmarshal(decl.Data, &d) != nil || d.Title != secret.Codename || d.Service != "(confidential)" || d.Summary != integration.Withheld {
		t.Fatalf("confidential declaration on the public stream: %s", decl.Data)
	}
	var n events.NoteAdded
	if note, ok := got[secret.ID+" "+events.TypeNoteAdded]; !ok || json.Unmarshal(note.Data, &n) != nil || n.Text != integration.Withheld {
		t.Fatalf("confidential note on the public stream: %s", note.Data)
	}
	if o, ok := got[open.ID+" "+events.TypeDeclared]; !ok || !strings.Contains(string(o.Data), "Docs site slow") {
		t.Fatalf("open incident on the public stream: %s", o.Data)
	}
}

type incidentRef struct {
	ID       string `json:"id"`
	Codename string `json:"codename"`
}

func declare(t *testing.T, api string, body map[string]any) incidentRef {
	t.Helper()
	var inc incidentRef
	if err := json.Unmarshal(post(t, api+"/api/v1/incidents", body), &inc); err != nil {
		t.Fatal(err)
	}
	return inc
}

func post(t *testing.T, url string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, out)
	}
	return out
}
