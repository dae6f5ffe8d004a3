package media

import "math"

// G.711 packet-loss concealment at 8 kHz, after ITU-T G.711 Appendix I
// (pitch-waveform replication) without its 3.75 ms delay: a lost piece is
// filled by repeating the last pitch period of the audio before it, found
// by autocorrelation, at full level for 10 ms and then fading by 20 % per
// 10 ms to silence at 60 ms; the first packet after a loss is cross-faded
// in from the concealment over 4 ms so it joins without a click.
const (
	plcMinPitch = 40  // 5 ms: 200 Hz, the highest pitch searched
	plcMaxPitch = 120 // 15 ms: 66.7 Hz, the lowest
	plcCorrLen  = 160 // 20 ms of audio compared per candidate period
	plcHistLen  = plcCorrLen + plcMaxPitch
	plcHold     = 80  // 10 ms at full level
	plcFade     = 400 // then to silence over 50 ms
	plcRecover  = 32  // 4 ms cross-fade into the next packet
)

// g711PLC keeps the decoded history and the state of a concealment in
// progress. Its zero value is ready (the history is silence); it allocates
// nothing.
type g711PLC struct {
	hist   [plcHistLen]int16 // the last samples played, oldest first
	period [plcMaxPitch]int16
	pitch  int // samples of period in use; 0: not concealing
	phase  int // next sample of period
	lost   int // samples concealed in this loss
}

// good takes a decoded packet in place: the first samples after a loss are
// cross-faded in from the concealment's continuation.
func (p *g711PLC) good(pcm []int16) {
	if p.pitch > 0 {
		n := min(plcRecover, len(pcm))
		for k := range n {
			s := int32(p.synth())
			pcm[k] = int16((s*int32(plcRecover-k) + int32(pcm[k])*int32(k)) / plcRecover)
		}
		p.pitch = 0
	}
	p.remember(pcm)
}

// conceal fills pcm with the continuation of the audio before it.
func (p *g711PLC) conceal(pcm []int16) {
	if p.pitch == 0 {
		p.start()
	}
	for k := range pcm {
		pcm[k] = p.synth()
	}
	p.remember(pcm)
}

// start finds the pitch period of the history and builds the waveform to
// repeat: the last period, its end blended into the samples before its
// start over a quarter period so that it loops without a step.
func (p *g711PLC) start() {
	h := &p.hist
	end := plcHistLen
	best, bestScore := plcMinPitch, -1.0
	for t := plcMinPitch; t <= plcMaxPitch; t++ {
		var c, e float64
		for i := end - plcCorrLen; i < end; i++ {
			a := float64(h[i-t])
			c += float64(h[i]) * a
			e += a * a
		}
		if e == 0 {
			continue
		}
		if s := c / math.Sqrt(e); s > bestScore {
			best, bestScore = t, s
		}
	}
	p.pitch, p.phase, p.lost = best, 0, 0
	copy(p.period[:best], h[end-best:])
	q := best / 4
	for k := range q {
		w := float64(k+1) / float64(q+1) // toward the samples that precede the period's start
		i := best - q + k
		p.period[i] = int16((1-w)*float64(h[end-q+k]) + w*float64(h[end-best-q+k]))
	}
}

// synth is the next concealment sample, faded by how long the loss lasts.
func (p *g711PLC) synth() int16 {
	v := float64(p.period[p.phase])
	p.phase++
	if p.phase == p.pitch {
		p.phase = 0
	}
	t := p.lost
	p.lost++
	switch {
	case t < plcHold:
		return int16(v)
	case t < plcHold+plcFade:
		return int16(v * float64(plcHold+plcFade-t) / plcFade)
	}
	return 0
}

// remember appends pcm to the history.
func (p *g711PLC) remember(pcm []int16) {
	if len(pcm) >= plcHistLen {
		copy(p.hist[:], pcm[len(pcm)-plcHistLen:])
		return
	}
	copy(p.hist[:], p.hist[len(pcm):])
	copy(p.hist[plcHistLen-len(pcm):], pcm)
}
