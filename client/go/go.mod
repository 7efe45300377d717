module portd.dev/portd

go 1.19
