// guestsh/inspect without its readOnly declaration: the images open
// read-write, and only the write rule keeps a reading run from committing.
export { default } from 'guestsh/inspect';
