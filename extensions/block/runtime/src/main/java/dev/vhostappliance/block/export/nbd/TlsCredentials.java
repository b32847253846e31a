package dev.vhostappliance.block.export.nbd;

import dev.vhostappliance.cli.StartupException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * QEMU's {@code tls-creds-x509} object for a server, with JSSE: the directory holds {@code ca-cert.pem},
 * {@code server-cert.pem} and {@code server-key.pem} (QEMU's names); with verify-peer (QEMU's default) a
 * client must present a certificate the CA signed. Keys may be PKCS#8 (openssl's) or PKCS#1 RSA (certtool's).
 * Optionally an {@code authz-simple} identity: the client certificate's distinguished name must equal it.
 */
public final class TlsCredentials {
    private static final Pattern PEM = Pattern.compile("-----BEGIN ([A-Z ]+)-----([^-]+)-----END \\1-----");
    private final String id;
    private final SSLContext context;
    private final boolean verifyPeer;
    private final String identity;

    private TlsCredentials(String id, SSLContext context, boolean verifyPeer, String identity) {
        this.id = id;
        this.context = context;
        this.verifyPeer = verifyPeer;
        this.identity = identity;
    }

    /** Loads the server's credentials from dir; a sentence of what is wrong otherwise. */
    public static TlsCredentials load(String id, Path dir, boolean verifyPeer) throws StartupException {
        try {
            List<Certificate> chain = certificates(dir.resolve("server-cert.pem"));
            PrivateKey key = privateKey(dir.resolve("server-key.pem"));
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            ks.setKeyEntry("server", key, new char[0], chain.toArray(Certificate[]::new));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, new char[0]);
            TrustManagerFactory tmf = null;
            if (verifyPeer) {
                KeyStore trust = KeyStore.getInstance("PKCS12");
                trust.load(null, null);
                int i = 0;
                for (Certificate c : certificates(dir.resolve("ca-cert.pem"))) {
                    trust.setCertificateEntry("ca" + i++, c);
                }
                tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(trust);
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), tmf == null ? null : new TrustManager[] {new UnnamedIssuers(
                    (X509ExtendedTrustManager) tmf.getTrustManagers()[0])}, null);
            return new TlsCredentials(id, context, verifyPeer, null);
        } catch (IOException | GeneralSecurityException e) {
            throw new StartupException("tls-creds-x509 '" + id + "': " + e.getMessage(), e);
        }
    }

    /**
     * The CA's checks, but no CA names in the TLS 1.3 CertificateRequest: GnuTLS clients (libnbd, QEMU) then
     * send no certificate at all from JSSE's list (the handshake fails with "Empty client certificate
     * chain"), while without names they send theirs and the CA still checks it.
     */
    private static final class UnnamedIssuers extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager ca;

        UnnamedIssuers(X509ExtendedTrustManager ca) {
            this.ca = ca;
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, java.net.Socket socket)
                throws java.security.cert.CertificateException {
            ca.checkClientTrusted(chain, authType, socket);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws java.security.cert.CertificateException {
            ca.checkClientTrusted(chain, authType, engine);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws java.security.cert.CertificateException {
            ca.checkClientTrusted(chain, authType);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, java.net.Socket socket)
                throws java.security.cert.CertificateException {
            ca.checkServerTrusted(chain, authType, socket);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws java.security.cert.CertificateException {
            ca.checkServerTrusted(chain, authType, engine);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws java.security.cert.CertificateException {
            ca.checkServerTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }

    /** The same credentials, allowing only the client whose certificate names identity (authz-simple). */
    public TlsCredentials withIdentity(String identity) throws StartupException {
        if (!verifyPeer) {
            throw new StartupException("tls-authz needs tls-creds '" + id + "' with verify-peer=on");
        }
        return new TlsCredentials(id, context, true, identity);
    }

    public String id() {
        return id;
    }

    /** A server-side engine for one connection. */
    SSLEngine newEngine() {
        SSLEngine e = context.createSSLEngine();
        e.setUseClientMode(false);
        e.setNeedClientAuth(verifyPeer);
        return e;
    }

    /** True if the peer of a finished handshake may connect (authz-simple); without an identity, any. */
    boolean authorized(SSLEngine engine) {
        if (identity == null) {
            return true;
        }
        try {
            Certificate[] peer = engine.getSession().getPeerCertificates();
            String dn = ((X509Certificate) peer[0]).getSubjectX500Principal().getName();
            return normalize(dn).equals(normalize(identity));
        } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
            return false;
        }
    }

    private static String normalize(String dn) {
        return dn.replaceAll("\\s*,\\s*", ",").replaceAll("\\s*=\\s*", "=").trim();
    }

    private static List<Certificate> certificates(Path file) throws IOException, GeneralSecurityException {
        if (!Files.isReadable(file)) {
            throw new IOException("cannot read " + file);
        }
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<Certificate> certs = new java.util.ArrayList<>();
        Matcher m = PEM.matcher(Files.readString(file, StandardCharsets.US_ASCII));
        while (m.find()) {
            if (m.group(1).equals("CERTIFICATE")) {
                certs.add(cf.generateCertificate(new ByteArrayInputStream(Base64.getMimeDecoder().decode(m.group(2)))));
            }
        }
        if (certs.isEmpty()) {
            throw new IOException("no certificate in " + file);
        }
        return certs;
    }

    private static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
        if (!Files.isReadable(file)) {
            throw new IOException("cannot read " + file);
        }
        Matcher m = PEM.matcher(Files.readString(file, StandardCharsets.US_ASCII));
        while (m.find()) {
            byte[] der = Base64.getMimeDecoder().decode(m.group(2));
            switch (m.group(1)) {
                case "PRIVATE KEY" -> {
                    for (String alg : new String[] {"RSA", "EC", "Ed25519"}) {
                        try {
                            return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
                        } catch (GeneralSecurityException e) {
                            // next algorithm
                        }
                    }
                    throw new IOException("unsupported key type in " + file);
                }
                case "RSA PRIVATE KEY" -> {
                    return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(rsaPkcs8(der)));
                }
                case "EC PRIVATE KEY" -> throw new IOException(file + " is an SEC1 EC key: convert it to PKCS#8 "
                        + "(certtool --to-p8 --null-password, or openssl pkcs8 -topk8 -nocrypt)");
                default -> {
                    // a certificate or parameters in the same file: skip
                }
            }
        }
        throw new IOException("no private key in " + file);
    }

    /** PKCS#1 RSAPrivateKey wrapped as PKCS#8: SEQUENCE { 0, SEQUENCE { rsaEncryption, NULL }, OCTET STRING }. */
    private static byte[] rsaPkcs8(byte[] pkcs1) {
        byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(new byte[] {0x02, 0x01, 0x00});
        body.writeBytes(algorithm);
        body.write(0x04);
        body.writeBytes(length(pkcs1.length));
        body.writeBytes(pkcs1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x30);
        out.writeBytes(length(body.size()));
        out.writeBytes(body.toByteArray());
        return out.toByteArray();
    }

    private static byte[] length(int n) {
        if (n < 0x80) {
            return new byte[] {(byte) n};
        }
        if (n < 0x100) {
            return new byte[] {(byte) 0x81, (byte) n};
        }
        if (n < 0x10000) {
            return new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n};
        }
        return new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
    }
}
