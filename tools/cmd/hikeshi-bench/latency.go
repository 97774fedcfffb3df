package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const sentHeader = "Bench-Sent"

// latency measures, at a paced rate, how long an append takes to become
// visible: through the hub's API and timeline, and raw from publish to an
// ordered consumer.
func latency(ctx context.Context, cfg config, run int, col *collector) error {
	raw, err := latencyRaw(ctx, cfg)
	if err != nil {
		return fmt.Errorf("latency raw: %w", err)
	}
	progress("run %d/%d latency raw:   p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%d events)", run, cfg.runs, raw.p50, raw.p99, raw.max, raw.n)
	h, err := latencyHub(ctx, cfg)
	if err != nil {
		return fmt.Errorf("latency hub: %w", err)
	}
	progress("run %d/%d latency hub:   p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms  (%d events, %d errors); POST alone p50 %.2f ms p99 %.2f ms; %.0f events/s kept", run, cfg.runs, h.p50, h.p99, h.max, h.n, h.errors, h.appendP50, h.appendP99, h.rate)
	for _, x := range []struct {
		name string
		s    summary
	}{{"raw", raw}, {"hub", h}} {
		col.add("latency", x.name+" p50", "ms", x.s.p50)
		col.add("latency", x.name+" p99", "ms", x.s.p99)
		col.add("latency", x.name+" max", "ms", x.s.max)
	}
	col.add("latency", "hub errors", "count", float64(h.errors))
	return nil
}

type summary struct {
	n             int
	errors        int
	p50, p99, max float64 // milliseconds
	// Of a paced hub measurement: the rate it kept (events/s, from the
	// first send to the last answer; below the pace, the hub could not
	// keep up and the latency is mostly queueing) and the POST alone.
	rate                 float64
	appendP50, appendP99 float64 // milliseconds
}

func summarise(d []time.Duration, errs int) summary {
	s := summary{n: len(d), errors: errs}
	if len(d) == 0 {
		return s
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return float64(d[max(i, 0)]) / float64(time.Millisecond)
	}
	s.p50, s.p99, s.max = q(0.50), q(0.99), float64(d[len(d)-1])/float64(time.Millisecond)
	return s
}

// pace calls send for events 0..total-1 at the configured rate, on an
// absolute schedule so that a slow send does not lower the rate.
func pace(ctx context.Context, rate, total int, send func(i int) error) error {
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := send(i); err != nil {
			return err
		}
	}
	return nil
}

// warmup is how many of the first events are sent but not measured.
func warmup(total int) int { return min(200, total/10) }

func latencyRaw(ctx context.Context, cfg config) (summary, error) {
	b, err := startBus(ctx, cfg, "rawlat")
	if err != nil {
		return summary{}, err
	}
	defer b.close()
	st, err := b.js.Stream(ctx, events.IncidentStream)
	if err != nil {
		return summary{}, err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.IncidentSubjectPrefix + ".>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return summary{}, err
	}
	total := int(float64(cfg.rate) * cfg.duration.Seconds())
	skip := warmup(total)
	lat := make([]time.Duration, 0, total)
	got := make(chan struct{})
	var mu sync.Mutex
	received := 0
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		sent, err := strconv.ParseInt(m.Headers().Get(sentHeader), 10, 64)
		mu.Lock()
		defer mu.Unlock()
		received++
		if err == nil && received > skip {
			lat = append(lat, now.Sub(time.Unix(0, sent)))
		}
		if received == total {
			close(got)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return summary{}, err
	}
	defer cc.Stop()

	type writer struct {
		subject, filter string
		body            []byte
		last            uint64
	}
	ws := make([]*writer, cfg.c)
	for i := range ws {
		id := events.NewID()
		env, err := events.New(id, &events.NoteAdded{Text: noteText(cfg.noteSize)}, events.Meta{})
		if err != nil {
			return summary{}, err
		}
		body, err := env.Marshal()
		if err != nil {
			return summary{}, err
		}
		subject, _ := events.IncidentSubject(id, env.Type)
		ws[i] = &writer{subject: subject, filter: events.IncidentFilter(id), body: body}
	}
	err = pace(ctx, cfg.rate, total, func(i int) error {
		w := ws[i%len(ws)]
		msg := &nats.Msg{Subject: w.subject, Data: w.body, Header: nats.Header{}}
		msg.Header.Set("Content-Type", "application/cloudevents+json")
		msg.Header.Set(sentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
		ack, err := b.js.PublishMsg(ctx, msg,
			jetstream.WithMsgID("rawlat-"+strconv.Itoa(i)),
			jetstream.WithExpectLastSequenceForSubject(w.last, w.filter))
		if err != nil {
			return err
		}
		w.last = ack.Sequence
		return nil
	})
	if err != nil {
		return summary{}, err
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		return summary{}, errors.New("ordered consumer did not receive every event within 10s")
	}
	mu.Lock()
	defer mu.Unlock()
	return summarise(lat, 0), nil
}

func latencyHub(ctx context.Context, cfg config) (summary, error) {
	rh, err := startHub(ctx, cfg, "hublat", 256)
	if err != nil {
		return summary{}, err
	}
	defer rh.close()
	ids, err := rh.declare(ctx, cfg.c)
	if err != nil {
		return summary{}, err
	}
	body, err := json.Marshal(map[string]string{"text": noteText(cfg.noteSize)})
	if err != nil {
		return summary{}, err
	}
	total := int(float64(cfg.rate) * cfg.duration.Seconds())
	skip := warmup(total)
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, total)
		post = make([]time.Duration, 0, total)
		errs int
		last error
		wg   sync.WaitGroup
	)
	// Bound the requests in flight; a stalled hub shows as latency, not as
	// an unbounded number of goroutines.
	sem := make(chan struct{}, 256)
	one := func(i int) {
		defer wg.Done()
		defer func() { <-sem }()
		id := ids[i%len(ids)]
		t0 := time.Now()
		appended, err := visible(ctx, rh, id, body)
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs++
			last = err
			return
		}
		if i >= skip {
			lat = append(lat, d)
			post = append(post, appended)
		}
	}
	start := time.Now()
	err = pace(ctx, cfg.rate, total, func(i int) error {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go one(i)
		return nil
	})
	wg.Wait()
	took := time.Since(start)
	if err != nil {
		return summary{}, err
	}
	if errs > 0 {
		progress("latency hub: %d of %d appends failed or never became visible; last: %v", errs, total, last)
	}
	s, p := summarise(lat, errs), summarise(post, 0)
	s.rate, s.appendP50, s.appendP99 = float64(total)/took.Seconds(), p.p50, p.p99
	return s, nil
}

// visible appends a note and long-polls the timeline until it holds it;
// it returns how long the POST took.
func visible(ctx context.Context, rh *runningHub, id string, body []byte) (time.Duration, error) {
	var st struct {
		Version uint64 `json:"version"`
	}
	t0 := time.Now()
	if err := rh.post(ctx, "/api/v1/incidents/"+id+"/notes", body, &st); err != nil {
		return 0, err
	}
	appended := time.Since(t0)
	if st.Version == 0 {
		return 0, errors.New("append answered without a version")
	}
	path := "/api/v1/incidents/" + id + "/timeline?after=" + strconv.FormatUint(st.Version-1, 10) + "&wait=5s"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var tl struct {
			Events []struct {
				Seq uint64 `json:"seq"`
			} `json:"events"`
		}
		if err := rh.get(ctx, path, &tl); err != nil {
			return 0, err
		}
		for _, e := range tl.Events {
			if e.Seq == st.Version {
				return appended, nil
			}
		}
	}
	return 0, fmt.Errorf("event %d of %s not on the timeline after 10s", st.Version, id)
}
