package tts

// fastAudio decodes the common audio message, {"audio":"<base64>",
// "sampleRate":N[,"isFinal":bool]} in any key order with any JSON
// whitespace, without encoding/json: no allocation, one pass. It accepts a
// strict subset of JSON; for anything else (another key, a duplicate key,
// an escape or control character in the string, a number that is not a
// plain integer, trailing data) it reports ok=false and the caller uses
// encoding/json, so the result never differs from it (the fuzz test
// checks that).
func fastAudio(data []byte) (audio []byte, rate int, final bool, ok bool) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, 0, false, false
	}
	i++
	var seenAudio, seenRate, seenFinal bool
	for {
		i = skipWS(data, i)
		if i >= len(data) || data[i] != '"' {
			return nil, 0, false, false
		}
		key, next, good := fastString(data, i)
		if !good {
			return nil, 0, false, false
		}
		i = skipWS(data, next)
		if i >= len(data) || data[i] != ':' {
			return nil, 0, false, false
		}
		i = skipWS(data, i+1)
		if i >= len(data) {
			return nil, 0, false, false
		}
		switch string(key) { // no allocation: the compiler special-cases this
		case "audio":
			if seenAudio || data[i] != '"' {
				return nil, 0, false, false
			}
			audio, i, good = fastString(data, i)
			if !good {
				return nil, 0, false, false
			}
			seenAudio = true
		case "sampleRate":
			if seenRate {
				return nil, 0, false, false
			}
			n, digits := 0, 0
			for i < len(data) && data[i] >= '0' && data[i] <= '9' {
				n = n*10 + int(data[i]-'0')
				i++
				digits++
			}
			if digits == 0 || digits > 9 || digits > 1 && data[i-digits] == '0' {
				return nil, 0, false, false
			}
			rate, seenRate = n, true
		case "isFinal":
			if seenFinal {
				return nil, 0, false, false
			}
			switch {
			case len(data)-i >= 4 && string(data[i:i+4]) == "true":
				final, i = true, i+4
			case len(data)-i >= 5 && string(data[i:i+5]) == "false":
				final, i = false, i+5
			default:
				return nil, 0, false, false
			}
			seenFinal = true
		default:
			return nil, 0, false, false
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return nil, 0, false, false
		}
		if data[i] == ',' {
			i++
			continue
		}
		if data[i] != '}' {
			return nil, 0, false, false
		}
		if skipWS(data, i+1) != len(data) || !seenAudio {
			return nil, 0, false, false
		}
		return audio, rate, final, true
	}
}

// fastString returns the content of the JSON string starting at data[i]
// ('"') and the index after its closing quote; good=false if it holds an
// escape or a control character (or is unterminated).
func fastString(data []byte, i int) (s []byte, next int, good bool) {
	start := i + 1
	for j := start; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[start:j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
