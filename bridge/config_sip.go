package bridge

import (
	"fmt"

	"github.com/voicebridge/voicebridge/bridge/plainrtp"
	"github.com/voicebridge/voicebridge/bridge/sip"
)

// validateSIP checks the SIP front door's fields. Errors never echo
// BotURL (it may carry credentials).
func (c Config) validateSIP() error {
	if _, err := sip.ParseListen(c.SIPListen); err != nil {
		return fmt.Errorf("%w: sip-listen: %v", ErrInvalidConfig, err)
	}
	if c.RTPPortMin != 0 || c.RTPPortMax != 0 {
		if _, _, err := plainrtp.ParsePortRange(fmt.Sprintf("%d-%d", c.RTPPortMin, c.RTPPortMax)); err != nil {
			return fmt.Errorf("%w: rtp-ports: %v", ErrInvalidConfig, err)
		}
	}
	if c.BotURL != "" {
		if _, err := sip.NewBotDialer(c.BotURL); err != nil {
			return fmt.Errorf("%w: bot-url: %v", ErrInvalidConfig, err)
		}
	}
	if c.SIPListen != "" && c.BotURL == "" {
		return fmt.Errorf("%w: sip-listen needs bot-url (the bot that takes SIP calls)", ErrInvalidConfig)
	}
	if c.RTPTimeout < 0 {
		return fmt.Errorf("%w: rtp-timeout must be positive", ErrInvalidConfig)
	}
	return nil
}
