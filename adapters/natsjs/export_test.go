package natsjs

// PublishSignal is the single-signal path of SignalPublisher.Put, for its
// tests.
var PublishSignal = (*SignalPublisher).publish
