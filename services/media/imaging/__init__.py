"""Reading pictures: type sniffing, decoding within limits, EXIF facts, variants, redaction."""
