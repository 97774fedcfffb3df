package events_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// The catalogue for outside consumers lives in the repository's docs/, next
// to this module. readDoc fails when the repository is there but the
// document is not; it skips only when the module is built outside the
// repository (from the module cache, say), where ../go.work does not exist.
func readDoc(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join("..", "docs", name)
	b, err := os.ReadFile(path)
	if err == nil {
		return string(b)
	}
	if _, werr := os.Stat(filepath.Join("..", "go.work")); errors.Is(werr, fs.ErrNotExist) {
		t.Skipf("%s: the events module is not inside the Hikeshi repository", path)
	}
	t.Fatalf("the event catalogue is missing: %v", err)
	return ""
}

// TestEventsPageListsEveryType: docs/events.md has a section per registered
// type, headed by the type, naming its subject name and version, with a
// table row per data field.
func TestEventsPageListsEveryType(t *testing.T) {
	doc := readDoc(t, "events.md")
	for _, s := range events.Specs() {
		section, ok := markdownSection(doc, "`"+s.Type+"`")
		if !ok {
			t.Errorf("events.md: no section headed `%s`", s.Type)
			continue
		}
		for _, want := range []string{
			"`" + s.Name + "`",
			fmt.Sprintf("version %d", s.Version),
		} {
			if !strings.Contains(section, want) {
				t.Errorf("events.md, %s: does not mention %s", s.Type, want)
			}
		}
		for _, f := range dataFields(s) {
			if !strings.Contains(section, "| `"+f+"` |") {
				t.Errorf("events.md, %s: no table row for field %q", s.Type, f)
			}
		}
	}
}

// markdownSection returns the text under the first ### heading containing
// title, up to the next heading.
func markdownSection(doc, title string) (string, bool) {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "### ") || !strings.Contains(l, title) {
			continue
		}
		var b strings.Builder
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "#") {
				break
			}
			b.WriteString(l + "\n")
		}
		return b.String(), true
	}
	return "", false
}

// TestAsyncAPIListsEveryType: docs/asyncapi.yaml has a message per
// registered type, referenced by the channel, with the type and version, and
// a data schema <SubjectName in CamelCase>Data with a property per field.
func TestAsyncAPIListsEveryType(t *testing.T) {
	doc := readDoc(t, "asyncapi.yaml")
	for _, s := range events.Specs() {
		for _, want := range []string{
			"$ref: '#/components/messages/" + s.Name + "'",
			"const: " + s.Type + "\n",
			fmt.Sprintf("title: %s, version %d\n", s.Type, s.Version),
			"          - " + s.Name + "\n", // eventName parameter enum
		} {
			if !strings.Contains(doc, want) {
				t.Errorf("asyncapi.yaml, %s: no %q", s.Type, strings.TrimSpace(want))
			}
		}
		// Every message is named by an operation on one of the channels.
		if !regexp.MustCompile(`\$ref: '#/channels/[A-Za-z]+/messages/` + s.Name + `'`).MatchString(doc) {
			t.Errorf("asyncapi.yaml, %s: no operation names the message on a channel", s.Type)
		}
		schema := camel(s.Name) + "Data"
		block, ok := yamlBlock(doc, "    "+schema+":")
		if !ok {
			t.Errorf("asyncapi.yaml, %s: no schema %s", s.Type, schema)
			continue
		}
		if !strings.Contains(doc, "$ref: '#/components/schemas/"+schema+"'") {
			t.Errorf("asyncapi.yaml, %s: schema %s is not referenced", s.Type, schema)
		}
		for _, f := range dataFields(s) {
			if !strings.Contains(block, "\n        "+f+":\n") {
				t.Errorf("asyncapi.yaml, %s: %s has no property %q", s.Type, schema, f)
			}
		}
	}
}

// yamlBlock returns the line that equals key and the more indented lines
// that follow it.
func yamlBlock(doc, key string) (string, bool) {
	indent := len(key) - len(strings.TrimLeft(key, " "))
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if l != key {
			continue
		}
		var b strings.Builder
		b.WriteString(l + "\n")
		for _, l := range lines[i+1:] {
			if strings.TrimSpace(l) != "" && len(l)-len(strings.TrimLeft(l, " ")) <= indent {
				break
			}
			b.WriteString(l + "\n")
		}
		return b.String(), true
	}
	return "", false
}

// camel turns a subject name into a schema name: slack_channel_linked →
// SlackChannelLinked.
func camel(name string) string {
	var b strings.Builder
	for w := range strings.SplitSeq(name, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}
