# Sourced by both launchers (launcher.sh in the app-image, ./vhost-appliance in the repository): which start-up,
# and so which AOT cache of aot-train.sh, serves program NAME with first argument ARG. Sets start_up to blk,
# input, gpu, run or qsd (the qemu-storage-daemon options, and whatever else vhost-appliance is given).
aot_start_up() { # NAME ARG
  case "$1 $2" in
    "vhost-user-blk "* | "vhost-appliance block") start_up=blk ;;
    "vhost-user-input "* | "vhost-appliance input") start_up=input ;;
    "vhost-user-gpu "* | "vhost-appliance gpu") start_up=gpu ;;
    "vhost-appliance run") start_up=run ;;
    *) start_up=qsd ;;
  esac
}
