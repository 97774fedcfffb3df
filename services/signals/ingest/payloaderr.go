package ingest

// A refused payload is answered with the JSON path of the first field that
// does not fit and why, in the sender's terms (a string, a number, an RFC
// 3339 time), never encoding/json's Go types and layouts; a payload of
// another known sender's shape is told which endpoint takes it. All of
// this runs only once a payload has been refused.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// payloadError explains why encoding/json could not decode b into v
// (err is its error); root names the top level in the path ("detail"
// for an EventBridge event's detail, "" for a whole body).
func payloadError(b []byte, v any, strict bool, root string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return bad("%sinvalid JSON at byte %d: %s", prefix(root), se.Offset, se.Error())
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return bad("%sinvalid JSON: the body ends inside a value", prefix(root))
	case errors.Is(err, io.EOF):
		return bad("%sinvalid JSON: the body is empty", prefix(root))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if path, why, _ := misfit(dec, reflect.TypeOf(v), root, strict); why != "" {
		return bad("%s: %s", first(path, "body"), why)
	}
	return bad("%sinvalid JSON", prefix(root))
}

func prefix(root string) string {
	if root == "" {
		return ""
	}
	return root + ": "
}

var (
	timeType   = reflect.TypeFor[time.Time]()
	numberType = reflect.TypeFor[json.Number]()
	rawType    = reflect.TypeFor[json.RawMessage]()
	anyType    = reflect.TypeFor[any]()
)

// misfit reads the next value from dec (which uses numbers) as
// encoding/json would decode it into t, in document order, and returns the
// path of the first value that does not fit and why; why is "" when
// everything fits.
func misfit(dec *json.Decoder, t reflect.Type, path string, strict bool) (string, string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType {
		t = anyType
	}
	tok, err := dec.Token()
	if err != nil {
		return "", "", err
	}
	switch tok {
	case json.Delim('{'):
		if t.Kind() != reflect.Interface && (t.Kind() != reflect.Map && t.Kind() != reflect.Struct || t == timeType) {
			return path, "expected " + expected(t) + ", got an object", nil
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return "", "", err
			}
			key, _ := k.(string)
			ft := anyType // a field encoding/json ignores
			switch t.Kind() {
			case reflect.Map:
				ft = t.Elem()
			case reflect.Struct:
				if f, ok := field(t, key); ok {
					ft = f.Type
				} else if strict {
					return join(path, key), "unknown field", nil
				}
			}
			if p, why, err := misfit(dec, ft, join(path, key), strict); why != "" || err != nil {
				return p, why, err
			}
		}
		_, err = dec.Token()
		return "", "", err
	case json.Delim('['):
		if t.Kind() != reflect.Interface && t.Kind() != reflect.Slice {
			return path, "expected " + expected(t) + ", got a list", nil
		}
		elem := anyType
		if t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if p, why, err := misfit(dec, elem, fmt.Sprintf("%s[%d]", path, i), strict); why != "" || err != nil {
				return p, why, err
			}
		}
		_, err = dec.Token()
		return "", "", err
	}
	if why := scalarMisfit(tok, t); why != "" {
		return path, why, nil
	}
	return "", "", nil
}

// scalarMisfit says why encoding/json refuses the scalar v for t, or "".
func scalarMisfit(v any, t reflect.Type) string {
	if v == nil || t.Kind() == reflect.Interface {
		return "" // null leaves any field as it was
	}
	s, isString := v.(string)
	n, isNumber := v.(json.Number)
	_, isBool := v.(bool)
	ok := false
	switch {
	case t == timeType:
		if !isString {
			break
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return clip(s) + " is not an RFC 3339 time such as \"2025-06-04T11:02:30Z\""
		}
		ok = true
	case t == numberType:
		_, err := strconv.ParseFloat(string(n)+s, 64)
		ok = (isNumber || isString) && err == nil
	case t.Kind() == reflect.String:
		ok = isString
	case t.Kind() == reflect.Bool:
		ok = isBool
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		i, err := strconv.ParseInt(string(n), 10, 64)
		ok = isNumber && err == nil && !reflect.New(t).Elem().OverflowInt(i)
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64:
		u, err := strconv.ParseUint(string(n), 10, 64)
		ok = isNumber && err == nil && !reflect.New(t).Elem().OverflowUint(u)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(string(n), 64)
		ok = isNumber && err == nil && !reflect.New(t).Elem().OverflowFloat(f)
	}
	if ok {
		return ""
	}
	if isNumber {
		return fmt.Sprintf("expected %s, got the number %s", expected(t), strings.Trim(clip(string(n)), `"`))
	}
	return fmt.Sprintf("expected %s, got %s", expected(t), kindOf(v))
}

// expected names what t takes, in JSON's terms.
func expected(t reflect.Type) string {
	switch {
	case t == timeType:
		return "an RFC 3339 time such as \"2025-06-04T11:02:30Z\""
	case t == numberType:
		return "a number"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// field finds the struct field encoding/json decodes key into: its JSON
// name exactly, else case-insensitively.
func field(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = &f
		}
	}
	if folded != nil {
		return *folded, true
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// kindOf names a JSON value's kind for people.
func kindOf(v any) string {
	switch v := v.(type) {
	case string:
		return "the string " + clip(v)
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// clip quotes a value for a message, shortened.
func clip(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return strconv.Quote(s)
}

// withHint adds to a refused payload the endpoint that takes it, when it
// has the shape of another known sender's payload.
func withHint(path string, parse func([]byte) ([]events.Signal, error)) func([]byte) ([]events.Signal, error) {
	return func(b []byte) ([]events.Signal, error) {
		sigs, err := parse(b)
		var br *badRequest
		if errors.As(err, &br) {
			if what, right := sniff(b); right != "" && right != path {
				return nil, bad("%s (this looks like %s: send it to POST %s)", br.msg, what, right)
			}
		}
		return sigs, err
	}
}

// sniff names the known sender's payload b looks like, by the top-level
// fields that tell them apart, and the endpoint that takes it.
func sniff(b []byte) (what, path string) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		return "a list of generic signals", PathGeneric
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return "", ""
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := top[k]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("detail-type", "detail"):
		return "an EventBridge event", PathAWS
	case has("Type", "TopicArn", "Message"):
		return "an SNS message", PathAWS
	case has("message", "subscription"):
		return "a Pub/Sub push message", PathGCPSCC
	case has("alerts", "orgId") || has("alerts") && string(top["version"]) == `"1"`:
		return "a Grafana webhook", PathGrafana
	case has("alerts", "groupKey"):
		return "an Alertmanager webhook", PathAlertmanager
	case has("reported_by", "customer_impact") || has("reported_at"):
		return "an escalation", PathEscalations
	case has("fingerprint", "severity"):
		return "a generic signal", PathGeneric
	}
	return "", ""
}
