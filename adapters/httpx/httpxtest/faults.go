// Package httpxtest holds the failure injection shared by the wire-format
// fakes of remote services (jiratest, githubtest): rate limits, outages,
// refusals, answers lost after the remote acted, dropped connections.
package httpxtest

import (
	"net/http"
	"strings"
	"sync"
)

// Faults makes a fake remote answer chosen calls with an error status
// before it handles them (rate limits, outages, refusals), or after it
// carried them out (the remote acted and the answer was lost on the way
// back), or by dropping the connection. The zero value injects nothing.
type Faults struct {
	mu   sync.Mutex
	list []fault
}

type fault struct {
	match  string
	header http.Header
	Fault
}

// Fault is one injected failure, as Next hands it to the fake.
type Fault struct {
	Status int // the status answered, unless Drop
	// After: the fake carries the call out, then fails.
	After bool
	// Drop closes the connection instead of answering.
	Drop bool
}

// Add makes the next call whose "METHOD /path" contains match ("" for any
// call) answer status, with Retry-After when retryAfter is set.
func (f *Faults) Add(match string, status int, retryAfter string) {
	var h http.Header
	if retryAfter != "" {
		h = http.Header{"Retry-After": {retryAfter}}
	}
	f.AddHeader(match, status, h)
}

// AddHeader makes the next call matching answer status with the headers
// h, e.g. GitHub's exhausted primary rate limit: 403 with
// X-RateLimit-Remaining: 0 and X-RateLimit-Reset, and no Retry-After.
func (f *Faults) AddHeader(match string, status int, h http.Header) {
	f.add(fault{match: match, header: h, Fault: Fault{Status: status}})
}

// AddAfter makes the next call matching carry out its work and then answer
// status, as a remote whose answer is lost after it acted (a 5xx from a
// proxy, a timeout in front of a slow write).
func (f *Faults) AddAfter(match string, status int) {
	f.add(fault{match: match, Fault: Fault{Status: status, After: true}})
}

// AddDrop makes the next call matching close the connection without an
// answer; performed says whether the remote carried the call out first.
func (f *Faults) AddDrop(match string, performed bool) {
	f.add(fault{match: match, Fault: Fault{After: performed, Drop: true}})
}

func (f *Faults) add(ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, ft)
}

// Next removes and returns the first fault matching r, having set its
// headers on w; ok is false when none matches.
func (f *Faults) Next(w http.ResponseWriter, r *http.Request) (ft Fault, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := r.Method + " " + r.URL.Path
	for i, it := range f.list {
		if strings.Contains(what, it.match) {
			f.list = append(f.list[:i], f.list[i+1:]...)
			for k, v := range it.header {
				w.Header()[k] = v
			}
			return it.Fault, true
		}
	}
	return Fault{}, false
}

// Hangup closes the connection of w without an answer.
func Hangup(w http.ResponseWriter) {
	if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
		c.Close()
	}
}
