package incident

import (
	"crypto/sha256"
	"encoding/binary"
)

// Codename derives a two-word codename (sapphire-unicorn) from a seed, the
// incident id, so a retried declare gets the same name again.
func Codename(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	a := binary.BigEndian.Uint32(sum[0:4])
	b := binary.BigEndian.Uint32(sum[4:8])
	return adjectives[a%uint32(len(adjectives))] + "-" + creatures[b%uint32(len(creatures))]
}

var adjectives = []string{
	"amber", "azure", "bold", "brisk", "calm", "cobalt", "coral", "crimson", "dusky", "ember",
	"fabled", "frosty", "gilded", "golden", "hidden", "indigo", "ivory", "jade", "keen", "lunar",
	"misty", "noble", "onyx", "opal", "pearl", "quiet", "ruby", "rustic", "sapphire", "scarlet",
	"silent", "silver", "solar", "stormy", "swift", "teal", "topaz", "velvet", "violet", "wild",
}

var creatures = []string{
	"badger", "bison", "condor", "crane", "dolphin", "falcon", "ferret", "fox", "gazelle", "griffin",
	"hare", "heron", "ibex", "jackal", "kestrel", "koi", "lynx", "marten", "moose", "narwhal",
	"ocelot", "orca", "otter", "owl", "panther", "pelican", "phoenix", "puma", "raven", "salmon",
	"seal", "sparrow", "stag", "swan", "tapir", "tiger", "unicorn", "viper", "walrus", "wolf",
}
