// Package peertest builds the Pion peers that tests use as callers of the
// bridge: loopback only, with Pion's default interceptors. Only tests
// import it.
package peertest

import (
	"net"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// NewPeer is a Pion peer connection that gathers on 127.0.0.1 only (UDP4,
// no mDNS), with Pion's default interceptors and the given audio codecs
// (nil: Pion's default codecs). A non-nil udpMux carries its ICE traffic.
func NewPeer(codecs []webrtc.RTPCodecParameters, udpMux ice.UDPMux) (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	if codecs == nil {
		if err := me.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if udpMux != nil {
		se.SetICEUDPMux(udpMux)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{})
}

// MustPeer is NewPeer, failing t on an error.
func MustPeer(t testing.TB, codecs []webrtc.RTPCodecParameters, udpMux ice.UDPMux) *webrtc.PeerConnection {
	t.Helper()
	pc, err := NewPeer(codecs, udpMux)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// Offer creates pc's offer, sets it as the local description and returns
// it once ICE gathering is complete.
func Offer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}
