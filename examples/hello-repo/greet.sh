#!/bin/sh
# Prints a greeting; the scripted agent leaves this file alone.
echo "hello, ${1:-world}"
