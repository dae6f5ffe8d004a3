package plainrtp

import (
	"testing"

	"github.com/pion/rtp"

	"github.com/voicebridge/voicebridge/media"
)

// The bridge's pacer writes to a media.PacketWriter: a Transport is one.
var _ media.PacketWriter = (*Transport)(nil)

// TestReceiveParseAllocs: parsing a caller's packet into the reused
// rtp.Packet of the read loop allocates nothing.
func TestReceiveParseAllocs(t *testing.T) {
	b, err := packet(1, 160).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	allocs := testing.AllocsPerRun(200, func() {
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Unmarshal allocates %v per packet", allocs)
	}
}
