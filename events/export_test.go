package events

// Unregister removes a type registered by a test, so that test-only types
// never leak into the catalogue checks of other tests.
func Unregister(typ string) {
	regMu.Lock()
	defer regMu.Unlock()
	delete(registry, typ)
}

// UnmarshalPlain and UnmarshalStd are Unmarshal's two decoders: the fast
// one for envelopes as Marshal writes them, and encoding/json.
var (
	UnmarshalPlain = unmarshalPlain
	UnmarshalStd   = unmarshalStd
)
