#!/bin/bash
echo app-image TODO
