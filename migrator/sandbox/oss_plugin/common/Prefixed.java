/* Blob names turned into OSS keys under a container's path, lazily (deletes may pass millions of names). */
package migrator.oss;

import java.util.Iterator;

final class Prefixed implements Iterator<String> {
    private final String prefix;
    private final Iterator<String> names;

    Prefixed(String prefix, Iterator<String> names) {
        this.prefix = prefix;
        this.names = names;
    }

    @Override
    public boolean hasNext() {
        return names.hasNext();
    }

    @Override
    public String next() {
        return prefix + names.next();
    }
}
