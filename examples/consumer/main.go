// Command consumer is an outside consumer of Hikeshi's event stream: it
// reads INCIDENTS with nats.go and the events module only, and prints each
// event or forwards it to a webhook. Copy it as the start of your own.
//
//	NATS_URL=nats://127.0.0.1:4222 go run . [-durable my-dashboard] [-forward https://example.com/hook]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	durable := flag.String("durable", "example-consumer", "consumer name: the stream remembers how far it got")
	forward := flag.String("forward", "", "POST each event (CloudEvents JSON) to this URL instead of printing it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.UserInfo(os.Getenv("NATS_USER"), os.Getenv("NATS_PASSWORD")))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.CreateOrUpdateConsumer(ctx, events.IncidentStream, jetstream.ConsumerConfig{
		Durable: *durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{events.IncidentSubjectPrefix + ".>"},
	})
	if err != nil {
		log.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		env, err := events.Unmarshal(m.Data()) // validates the envelope
		if err != nil {
			m.Term() // malformed: redelivery will not help
			return
		}
		if *forward != "" {
			resp, err := http.Post(*forward, "application/cloudevents+json", bytes.NewReader(m.Data()))
			if err != nil || resp.StatusCode >= 300 {
				m.Nak() // the webhook is down: the stream redelivers later
				return
			}
			resp.Body.Close()
		} else {
			var data any = "(a type this build does not know: update the events module)"
			if d, err := env.Decode(); err == nil { // current struct, older versions upcast
				data = d
			}
			fmt.Printf("%s %s %s %+v\n", env.Time.Format(time.RFC3339), env.Subject, env.Type, data)
		}
		m.Ack()
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Stop()
	<-ctx.Done()
}
