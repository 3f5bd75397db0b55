package dev.kiln.tls;

import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import java.security.cert.X509Certificate;

/**
 * The mark of a bootstrap certificate: the organisational unit {@value #UNIT} in its subject.
 * {@code kiln launch} puts one, valid for minutes, with its key into user data; the agent
 * presents it only until it enrolls a key of its own, and the controller accepts it for
 * enrollment only ({@link ServerCertificateTrust}). The fleet CA signs the subject, so no one
 * without the CA's key can add or remove the mark.
 */
public final class BootstrapCertificate {

    /** The organisational unit that marks a bootstrap certificate. */
    public static final String UNIT = "kiln-bootstrap";

    private BootstrapCertificate() {
    }

    /** True when {@code cert}'s subject carries OU={@value #UNIT}. */
    public static boolean is(X509Certificate cert) {
        try {
            for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
                if (rdn.getType().equalsIgnoreCase("OU") && UNIT.equals(String.valueOf(rdn.getValue()))) {
                    return true;
                }
            }
            return false;
        } catch (InvalidNameException e) {
            return false;
        }
    }
}
